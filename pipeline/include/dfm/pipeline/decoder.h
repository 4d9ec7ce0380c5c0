// Offline, pull-based video decoder for `dfmon audit`: one file or URI in, sampled BGR frames out.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dfm/common/status.h"
#include "dfm/pipeline/frame.h"

namespace dfm {

struct DecodeOptions {
  // Frames handed out per second of media time, chosen by timestamp (0 = every frame).
  //
  // Sampling rule (decided on the decoded buffer's PTS, before colour conversion, so unsampled frames
  // cost only their decode): the first frame is kept and sets next_due = its pts + step
  // (step = 1 / sample_fps). A later frame is kept when pts >= next_due - 1 ms (tolerance for
  // timescale rounding); then next_due += step, and if that is still <= the frame's pts (a gap in
  // the media, or a source slower than sample_fps) the grid re-anchors: next_due = pts + step.
  // So the output averages sample_fps on a fixed grid for constant and variable frame rates,
  // a gap yields one frame after it (never a burst), and a slow source yields every frame.
  double sample_fps = 5.0;
  // No decoded frame, EOS or error for this long -> Timeout error naming the input.
  double stall_timeout_s = 20.0;
  // 0 = native size; else frames wider than this are downscaled to this width (height keeps the
  // display aspect ratio, output pixels are square). Scaling happens before conversion to BGR.
  int max_width = 0;
};

// Initialises GStreamer once (thread-safe; the decoder calls it itself). Other modules that run
// GStreamer pipelines in the same process should call it before starting them: it installs a
// message tap, which GStreamer only allows before any pipeline runs.
void ensure_gstreamer();

// True when `s` starts with an RFC 3986 scheme followed by "://" (file://, rtsp://, http://, ...).
bool is_uri(const std::string& s);
// URIs are returned unchanged; paths become absolute file:// URIs (relative to the working directory).
std::string to_uri(const std::string& path_or_uri);

// Decodes one input through uridecodebin -> [videoscale] -> videoconvert -> appsink (BGR).
// Not thread-safe: one owner thread calls next(). Owns its GStreamer pipeline; the destructor stops
// it (also mid-stream) and releases everything. Audio and other non-video streams are discarded
// undecoded; only the first video stream is used.
class VideoDecoder {
 public:
  // Validates the input (missing file -> NotFound, empty file or directory -> InvalidArgument, each
  // naming the input) and starts the pipeline. Decode errors surface from next().
  static Result<std::unique_ptr<VideoDecoder>> open(const std::string& path_or_uri, const DecodeOptions& options);
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  // Next sampled frame (owned BGR copy, pts_s = stream time); std::nullopt at end of stream.
  // Errors: Unsupported (no video stream, no decoder for the codec, not a media file),
  // InvalidArgument (corrupt/truncated data), NotFound/IoError (source), Timeout (stall).
  // Frames decoded before an error are returned first. After nullopt or an error, further calls
  // return the same outcome.
  Result<std::optional<Frame>> next();

  // Every frame the decoder produced so far, sampled or not.
  int64_t frames_decoded() const;
  // Media duration from the pipeline query if known, else the last decoded pts; -1 if unknown.
  double duration_s() const;
  const std::string& input() const { return input_; }

 private:
  struct Impl;
  VideoDecoder(std::string input, std::unique_ptr<Impl> impl);

  std::string input_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfm
