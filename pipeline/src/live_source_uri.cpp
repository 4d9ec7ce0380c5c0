// LiveSource helpers: what kind of source a URI is, what can never work, and how errors read.
#include <algorithm>
#include <cctype>
#include <cmath>

#include "decoder_gst.h"
#include "live_source_internal.h"

namespace dfm::live {
namespace {

struct SchemeInfo {
  const char* scheme;
  Kind kind;
  const char* package;  // where the GStreamer source element comes from
};

constexpr SchemeInfo kSchemes[] = {
    {"file", Kind::kFile, "gstreamer1.0-plugins-base"},  {"rtsp", Kind::kRtsp, "gstreamer1.0-plugins-good"},
    {"rtsps", Kind::kRtsp, "gstreamer1.0-plugins-good"}, {"rtspt", Kind::kRtsp, "gstreamer1.0-plugins-good"},
    {"rtspu", Kind::kRtsp, "gstreamer1.0-plugins-good"}, {"http", Kind::kHttp, "gstreamer1.0-plugins-good"},
    {"https", Kind::kHttp, "gstreamer1.0-plugins-good"}, {"udp", Kind::kUdp, "gstreamer1.0-plugins-good"},
    {"srt", Kind::kSrt, "gstreamer1.0-plugins-bad"},     {"v4l2", Kind::kV4l2, "gstreamer1.0-plugins-good"},
};

const SchemeInfo* find_scheme(const std::string& uri) {
  std::string s = scheme_of(uri);
  for (const SchemeInfo& i : kSchemes) {
    if (s == i.scheme) return &i;
  }
  return nullptr;
}

Status positive(const std::string& tag, const char* key, double v) {
  if (std::isfinite(v) && v > 0) return Status::Ok();
  return InvalidArgument(tag + key + " must be > 0, got " + std::to_string(v));
}

}  // namespace

std::string scheme_of(const std::string& uri) {
  size_t p = uri.find("://");
  if (p == std::string::npos || p == 0) return "";
  std::string s = uri.substr(0, p);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

Kind kind_of(const std::string& uri) {
  const SchemeInfo* i = find_scheme(uri);
  return i ? i->kind : Kind::kOther;
}

bool paced_by_clock(Kind kind) {
  return kind == Kind::kFile || kind == Kind::kHttp;
}

Status check_source(const std::string& uri, const std::string& tag) {
  const SchemeInfo* info = find_scheme(uri);
  if (!info) {
    std::string s = scheme_of(uri);
    return Unsupported(tag + ": unsupported URI scheme " + (s.empty() ? "(none)" : "\"" + s + "\"") +
                       " (expected file, rtsp, rtsps, http, https, udp, srt or v4l2)");
  }
  if (!gst_uri_protocol_is_supported(GST_URI_SRC, info->scheme)) {
    return Unsupported(tag + ": no GStreamer source element for " + info->scheme + ":// (install " + info->package +
                       ")");
  }
  if (info->kind != Kind::kFile) return Status::Ok();
  gchar* file = g_filename_from_uri(uri.c_str(), nullptr, nullptr);
  if (!file) return InvalidArgument(tag + ": not a valid local file URI");
  std::string path = file;
  g_free(file);
  return gstutil::check_local_file(tag, path);
}

Status validate_options(const LiveSourceOptions& o) {
  if (o.id.empty()) return InvalidArgument("live source: id is empty");
  const std::string tag = "stream \"" + o.id + "\": ";
  if (o.uri.empty()) return InvalidArgument(tag + "uri is empty");
  if (o.transport != "auto" && o.transport != "tcp" && o.transport != "udp") {
    return InvalidArgument(tag + "transport must be auto, tcp or udp, got \"" + o.transport + "\"");
  }
  if (o.latency_ms < 0) return InvalidArgument(tag + "latency_ms must be >= 0, got " + std::to_string(o.latency_ms));
  if (!std::isfinite(o.sample_fps) || o.sample_fps < 0) {
    return InvalidArgument(tag + "sample_fps must be >= 0 (0 = every frame), got " + std::to_string(o.sample_fps));
  }
  if (o.max_width < 0) return InvalidArgument(tag + "max_width must be >= 0, got " + std::to_string(o.max_width));
  if (o.decoder_threads < 0 || o.decoder_threads > 64)
    return InvalidArgument(tag + "decoder_threads must be within 0..64 (0 = the decoder's default), got " +
                           std::to_string(o.decoder_threads));
  if (o.queue_frames < 1)
    return InvalidArgument(tag + "queue_frames must be >= 1, got " + std::to_string(o.queue_frames));
  DFM_RETURN_IF_ERROR(positive(tag, "initial_backoff_s", o.initial_backoff_s));
  DFM_RETURN_IF_ERROR(positive(tag, "max_backoff_s", o.max_backoff_s));
  DFM_RETURN_IF_ERROR(positive(tag, "stall_timeout_s", o.stall_timeout_s));
  DFM_RETURN_IF_ERROR(positive(tag, "stop_timeout_s", o.stop_timeout_s));
  DFM_RETURN_IF_ERROR(positive(tag, "healthy_after_s", o.healthy_after_s));
  if (o.max_backoff_s < o.initial_backoff_s) return InvalidArgument(tag + "max_backoff_s must be >= initial_backoff_s");
  if (!std::isfinite(o.backoff_multiplier) || o.backoff_multiplier < 1) {
    return InvalidArgument(tag + "backoff_multiplier must be >= 1, got " + std::to_string(o.backoff_multiplier));
  }
  if (o.max_attempts < 0) return InvalidArgument(tag + "max_attempts must be >= 0 (0 = forever)");
  return Status::Ok();
}

std::string redact_uri(const std::string& uri) {
  size_t start = uri.find("://");
  if (start == std::string::npos) return uri;
  start += 3;
  size_t end = uri.find_first_of("/?#", start);
  size_t at = uri.rfind('@', end == std::string::npos ? uri.size() : end);
  if (at == std::string::npos || at < start) return uri;
  size_t colon = uri.find(':', start);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon + 1) + "***" + uri.substr(at);
}

Status describe_error(const std::string& tag, GstMessage* msg) {
  gstutil::ParsedMessage m(msg);
  Status st = gstutil::status_from_gerror(tag, m.err, nullptr);
  // Debug text is "file.c(123): function (): /Element/path:\nwhat happened"; the last line says why.
  std::string detail = m.debug ? m.debug : "";
  size_t nl = detail.rfind('\n');
  detail = nl == std::string::npos ? "" : gstutil::shorten(detail.substr(nl + 1), 160);
  if (!detail.empty() && m.err->message && detail != m.err->message)
    st = Status(st.code(), st.message() + " (" + detail + ")");
  return st;
}

}  // namespace dfm::live
