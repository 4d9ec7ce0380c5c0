// dfmondetect: GObject boilerplate, properties, and model loading in start(); the per-frame work is
// DetectStream's (detect_stream.cpp).
//
// By default analysis is synchronous in the streaming thread: a sampled frame is held for detection +
// inference (tens to hundreds of ms on CPU). async=true moves it to a worker (detect_stream.h).
#include "gstdfmondetect.h"

#include <gst/video/video.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "detect_stream.h"
#include "dfm/common/paths.h"
#include "dfm/config/config.h"
#include "dfm/pipeline/frame_analyzer.h"
#include "face_meta_impl.h"
#include "video_bgr.h"  // DFMON_VIDEO_FORMATS

GST_DEBUG_CATEGORY(dfmon_detect_debug);
#define GST_CAT_DEFAULT dfmon_detect_debug

namespace {

// Defaults live in config/ (the `dfmon watch` schema); the element only mirrors them.
const dfm::config::ScoringConfig kScoring{};
const dfm::config::DetectorConfig kDetector{};

struct Settings {
  std::string models_dir;  // "" = bundled models (find_default_model_dir)
  std::string models;      // comma-separated names; "" = resnet18,vit (bundled) or every card in models-dir
  dfm::Backend backend = dfm::Backend::kAuto;
  double sample_fps = kScoring.fps;
  int detect_every = kDetector.detect_every;
  int max_width = kDetector.max_width;
  int min_face = kDetector.min_face;
  double ema = kScoring.smoothing.alpha;
  double alert_on = kScoring.alert.on;
  double alert_off = kScoring.alert.off;
  double min_duration = kScoring.alert.min_duration_s;
  bool overlay = false;
  bool emit_scores = true;
  bool async = false;
  std::string stream_id;  // "" = the element's name
};

}  // namespace

struct _GstDfmonDetect {
  GstVideoFilter parent;
  Settings* settings;                  // guarded by the object lock
  dfm::gst::DetectStream* rt;          // streaming thread; created in start(), destroyed in stop()
  dfm::gst::DetectCounters* counters;  // read by the frames-* properties from any thread
};

enum {
  PROP_0,
  PROP_MODELS_DIR,
  PROP_MODELS,
  PROP_BACKEND,
  PROP_SAMPLE_FPS,
  PROP_DETECT_EVERY,
  PROP_MAX_WIDTH,
  PROP_MIN_FACE,
  PROP_EMA,
  PROP_ALERT_THRESHOLD,
  PROP_CLEAR_THRESHOLD,
  PROP_MIN_DURATION,
  PROP_OVERLAY,
  PROP_EMIT_SCORES,
  PROP_STREAM_ID,
  PROP_ASYNC,
  PROP_FRAMES_ANALYSED,
  PROP_FRAMES_DROPPED,
};

#define GST_TYPE_DFMON_BACKEND (gst_dfmon_backend_get_type())
static GType gst_dfmon_backend_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(dfm::Backend::kAuto), "CUDA or OpenCL when the OpenCV build has it, else CPU", "auto"},
      {static_cast<gint>(dfm::Backend::kCuda), "CUDA (falls back to CPU with a warning)", "cuda"},
      {static_cast<gint>(dfm::Backend::kOpenCL), "OpenCL (falls back to CPU with a warning)", "opencl"},
      {static_cast<gint>(dfm::Backend::kCpu), "CPU", "cpu"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstDfmonBackend", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

#define gst_dfmon_detect_parent_class parent_class
G_DEFINE_TYPE(GstDfmonDetect, gst_dfmon_detect, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE(dfmondetect, "dfmondetect", GST_RANK_NONE, GST_TYPE_DFMON_DETECT);

namespace {

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

}  // namespace

static gboolean gst_dfmon_detect_start(GstBaseTransform* trans) {
  GstDfmonDetect* self = GST_DFMON_DETECT(trans);
  GST_OBJECT_LOCK(self);
  Settings s = *self->settings;
  const std::string name = GST_OBJECT_NAME(self) ? GST_OBJECT_NAME(self) : "dfmondetect";
  GST_OBJECT_UNLOCK(self);

  if (!(s.alert_off < s.alert_on)) {
    GST_ELEMENT_ERROR(self, LIBRARY, SETTINGS,
                      ("clear-threshold (%g) must be below alert-threshold (%g)", s.alert_off, s.alert_on), (nullptr));
    return FALSE;
  }
  dfm::ModelSetOptions mo;
  mo.dir = s.models_dir.empty() ? dfm::find_default_model_dir() : s.models_dir;
  if (mo.dir.empty()) {
    std::string where;
    for (const auto& d : dfm::default_model_dirs()) where += (where.empty() ? "" : ", ") + d;
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND,
                      ("no bundled models found (looked in %s); set models-dir", where.c_str()), (nullptr));
    return FALSE;
  }
  mo.names = split_names(s.models);
  // Like the CLI: the bundled directory also holds other cards; a directory given explicitly is used whole.
  if (mo.names.empty() && s.models_dir.empty()) mo.names = {"resnet18", "vit"};
  mo.backend = s.backend;
  // An element must not change the host process's OpenCV thread count, which side-by-side models need.
  mo.parallel = false;
  GST_INFO_OBJECT(self, "loading models from %s", mo.dir.c_str());
  auto set = dfm::ModelSet::load(mo);
  if (!set.ok()) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
                      ("cannot load models from \"%s\": %s", mo.dir.c_str(), set.status().message().c_str()),
                      (nullptr));
    return FALSE;
  }
  dfm::FrameAnalyzerOptions ao;
  ao.detect_every = s.detect_every;
  ao.emit_scores = s.emit_scores;
  ao.detector.max_width = s.max_width;
  ao.detector.min_face = s.min_face;
  ao.smoothing.alpha = s.ema;
  ao.alert.on = s.alert_on;
  ao.alert.off = s.alert_off;
  ao.alert.min_duration_s = s.min_duration;
  auto analyzer = dfm::FrameAnalyzer::create(*set, ao);
  if (!analyzer.ok()) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("%s", analyzer.status().message().c_str()), (nullptr));
    return FALSE;
  }
  self->counters->analysed = 0;
  self->counters->dropped = 0;
  self->rt =
      new dfm::gst::DetectStream(GST_ELEMENT(self), std::move(analyzer).value(),
                                 s.stream_id.empty() ? name : s.stream_id, s.sample_fps, s.async, self->counters);
  GST_INFO_OBJECT(self, "stream \"%s\": %zu models, sample-fps %g, detect-every %d", self->rt->stream().c_str(),
                  (*set)->models().size(), s.sample_fps, s.detect_every);
  return TRUE;
}

static gboolean gst_dfmon_detect_stop(GstBaseTransform* trans) {
  GstDfmonDetect* self = GST_DFMON_DETECT(trans);
  if (self->rt) self->rt->close();
  delete self->rt;
  self->rt = nullptr;
  return TRUE;
}

static gboolean gst_dfmon_detect_sink_event(GstBaseTransform* trans, GstEvent* event) {
  GstDfmonDetect* self = GST_DFMON_DETECT(trans);
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_EOS:         // posted before EOS travels on, so the bus sees alert_end before EOS
    case GST_EVENT_FLUSH_STOP:  // a seek: old tracks and the sampling grid no longer apply
    case GST_EVENT_STREAM_START:
      if (self->rt) self->rt->close();
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS(parent_class)->sink_event(trans, event);
}

static GstFlowReturn gst_dfmon_detect_transform_frame_ip(GstVideoFilter* filter, GstVideoFrame* frame) {
  GstDfmonDetect* self = GST_DFMON_DETECT(filter);
  if (!self->rt) return GST_FLOW_NOT_NEGOTIATED;  // start() failed and posted the error
  GST_OBJECT_LOCK(self);
  const bool overlay = self->settings->overlay;
  GST_OBJECT_UNLOCK(self);
  self->rt->process(frame, &GST_BASE_TRANSFORM(filter)->segment, overlay);
  return GST_FLOW_OK;
}

static void gst_dfmon_detect_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  GstDfmonDetect* self = GST_DFMON_DETECT(object);
  GST_OBJECT_LOCK(self);
  Settings& s = *self->settings;
  switch (prop_id) {
    case PROP_MODELS_DIR:
      s.models_dir = g_value_get_string(value) ? g_value_get_string(value) : "";
      break;
    case PROP_MODELS:
      s.models = g_value_get_string(value) ? g_value_get_string(value) : "";
      break;
    case PROP_BACKEND:
      s.backend = static_cast<dfm::Backend>(g_value_get_enum(value));
      break;
    case PROP_SAMPLE_FPS:
      s.sample_fps = g_value_get_double(value);
      break;
    case PROP_DETECT_EVERY:
      s.detect_every = g_value_get_int(value);
      break;
    case PROP_MAX_WIDTH:
      s.max_width = g_value_get_int(value);
      break;
    case PROP_MIN_FACE:
      s.min_face = g_value_get_int(value);
      break;
    case PROP_EMA:
      s.ema = g_value_get_double(value);
      break;
    case PROP_ALERT_THRESHOLD:
      s.alert_on = g_value_get_double(value);
      break;
    case PROP_CLEAR_THRESHOLD:
      s.alert_off = g_value_get_double(value);
      break;
    case PROP_MIN_DURATION:
      s.min_duration = g_value_get_double(value);
      break;
    case PROP_OVERLAY:
      s.overlay = g_value_get_boolean(value);
      break;
    case PROP_EMIT_SCORES:
      s.emit_scores = g_value_get_boolean(value);
      break;
    case PROP_STREAM_ID:
      s.stream_id = g_value_get_string(value) ? g_value_get_string(value) : "";
      break;
    case PROP_ASYNC:
      s.async = g_value_get_boolean(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_dfmon_detect_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  GstDfmonDetect* self = GST_DFMON_DETECT(object);
  GST_OBJECT_LOCK(self);
  const Settings& s = *self->settings;
  auto opt_string = [&](const std::string& v) { g_value_set_string(value, v.empty() ? nullptr : v.c_str()); };
  switch (prop_id) {
    case PROP_MODELS_DIR:
      opt_string(s.models_dir);
      break;
    case PROP_MODELS:
      opt_string(s.models);
      break;
    case PROP_BACKEND:
      g_value_set_enum(value, static_cast<gint>(s.backend));
      break;
    case PROP_SAMPLE_FPS:
      g_value_set_double(value, s.sample_fps);
      break;
    case PROP_DETECT_EVERY:
      g_value_set_int(value, s.detect_every);
      break;
    case PROP_MAX_WIDTH:
      g_value_set_int(value, s.max_width);
      break;
    case PROP_MIN_FACE:
      g_value_set_int(value, s.min_face);
      break;
    case PROP_EMA:
      g_value_set_double(value, s.ema);
      break;
    case PROP_ALERT_THRESHOLD:
      g_value_set_double(value, s.alert_on);
      break;
    case PROP_CLEAR_THRESHOLD:
      g_value_set_double(value, s.alert_off);
      break;
    case PROP_MIN_DURATION:
      g_value_set_double(value, s.min_duration);
      break;
    case PROP_OVERLAY:
      g_value_set_boolean(value, s.overlay);
      break;
    case PROP_EMIT_SCORES:
      g_value_set_boolean(value, s.emit_scores);
      break;
    case PROP_STREAM_ID:
      opt_string(s.stream_id);
      break;
    case PROP_ASYNC:
      g_value_set_boolean(value, s.async);
      break;
    case PROP_FRAMES_ANALYSED:
      g_value_set_uint64(value, self->counters->analysed.load());
      break;
    case PROP_FRAMES_DROPPED:
      g_value_set_uint64(value, self->counters->dropped.load());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_dfmon_detect_finalize(GObject* object) {
  GstDfmonDetect* self = GST_DFMON_DETECT(object);
  delete self->rt;
  self->rt = nullptr;
  delete self->settings;
  self->settings = nullptr;
  delete self->counters;
  self->counters = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_dfmon_detect_init(GstDfmonDetect* self) {
  self->settings = new Settings();
  self->rt = nullptr;
  self->counters = new dfm::gst::DetectCounters();
}

static void gst_dfmon_detect_class_init(GstDfmonDetectClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  GstVideoFilterClass* filter_class = GST_VIDEO_FILTER_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(dfmon_detect_debug, "dfmondetect", 0, "dfmon deepfake face detector");
  dfmon_face_meta_api_get_type();

  gobject_class->set_property = gst_dfmon_detect_set_property;
  gobject_class->get_property = gst_dfmon_detect_get_property;
  gobject_class->finalize = gst_dfmon_detect_finalize;

  const auto ready = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const auto playing = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  // The blurb shows where the default models are right now (the search order of dfm::default_model_dirs).
  static const std::string models_dir_blurb =
      "Directory with the model cards (NAME.json) and ONNX files; unset = the bundled models (found now: " +
      (dfm::find_default_model_dir().empty() ? std::string("none") : dfm::find_default_model_dir()) +
      "; $DFMON_MODELS overrides)";
  g_object_class_install_property(
      gobject_class, PROP_MODELS_DIR,
      g_param_spec_string("models-dir", "Models directory", models_dir_blurb.c_str(), nullptr, ready));
  g_object_class_install_property(
      gobject_class, PROP_MODELS,
      g_param_spec_string("models", "Models",
                          "Comma-separated model names in models-dir; unset = resnet18,vit for the bundled models, "
                          "every card for an explicit models-dir",
                          nullptr, ready));
  g_object_class_install_property(
      gobject_class, PROP_BACKEND,
      g_param_spec_enum("backend", "Backend", "OpenCV DNN backend for the models", GST_TYPE_DFMON_BACKEND,
                        static_cast<gint>(dfm::Backend::kAuto), ready));
  g_object_class_install_property(
      gobject_class, PROP_SAMPLE_FPS,
      g_param_spec_double("sample-fps", "Sample FPS",
                          "Frames analysed per second of stream time, chosen by PTS (0 = every frame); the others "
                          "pass untouched",
                          0.0, 120.0, kScoring.fps, ready));
  g_object_class_install_property(
      gobject_class, PROP_DETECT_EVERY,
      g_param_spec_int("detect-every", "Detect every",
                       "Run the face detector on every Nth analysed frame; follow tracked faces by landmarks between",
                       1, 100, kDetector.detect_every, ready));
  g_object_class_install_property(
      gobject_class, PROP_MAX_WIDTH,
      g_param_spec_int("detect-max-width", "Detection max width",
                       "Frames wider than this are downscaled for face detection (0 = never)", 0, 16384,
                       kDetector.max_width, ready));
  g_object_class_install_property(
      gobject_class, PROP_MIN_FACE,
      g_param_spec_int("min-face", "Minimum face", "Faces narrower than this many pixels are ignored", 1, 4096,
                       kDetector.min_face, ready));
  g_object_class_install_property(
      gobject_class, PROP_EMA,
      g_param_spec_double("ema", "EMA alpha",
                          "Weight of the newest score in each face track's moving average (1 = no smoothing)", 0.01,
                          1.0, kScoring.smoothing.alpha, ready));
  g_object_class_install_property(
      gobject_class, PROP_ALERT_THRESHOLD,
      g_param_spec_double("alert-threshold", "Alert threshold",
                          "An alert starts when a track's smoothed P(fake) stays at or above this for min-duration",
                          0.0, 1.0, kScoring.alert.on, ready));
  g_object_class_install_property(
      gobject_class, PROP_CLEAR_THRESHOLD,
      g_param_spec_double("clear-threshold", "Clear threshold",
                          "An open alert ends when the smoothed P(fake) falls below this (must be < alert-threshold)",
                          0.0, 1.0, kScoring.alert.off, ready));
  g_object_class_install_property(
      gobject_class, PROP_MIN_DURATION,
      g_param_spec_double("min-duration", "Minimum alert duration",
                          "Seconds the smoothed score must stay >= alert-threshold before alert_start", 0.0, 3600.0,
                          kScoring.alert.min_duration_s, ready));
  g_object_class_install_property(
      gobject_class, PROP_OVERLAY,
      g_param_spec_boolean("overlay", "Overlay",
                           "Draw face boxes and smoothed scores on the video (green, red while the track alerts)",
                           FALSE, playing));
  g_object_class_install_property(
      gobject_class, PROP_EMIT_SCORES,
      g_param_spec_boolean("emit-scores", "Emit scores",
                           "Post a `score` message per scored face (alert_start/alert_end are always posted)", TRUE,
                           ready));
  g_object_class_install_property(
      gobject_class, PROP_STREAM_ID,
      g_param_spec_string("stream-id", "Stream id", "Stream name in the events; unset = the element's name", nullptr,
                          ready));
  g_object_class_install_property(
      gobject_class, PROP_ASYNC,
      g_param_spec_boolean("async", "Asynchronous analysis",
                           "Analyse in a worker thread so video never waits; a sampled frame that finds the worker "
                           "busy is skipped (frames-dropped), and metas ride on the next buffer after a result "
                           "(their pts_s names the analysed frame). false = every sampled frame is analysed before "
                           "it leaves",
                           FALSE, ready));
  const auto read_only = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      gobject_class, PROP_FRAMES_ANALYSED,
      g_param_spec_uint64("frames-analysed", "Frames analysed", "Sampled frames analysed since start", 0, G_MAXUINT64,
                          0, read_only));
  g_object_class_install_property(
      gobject_class, PROP_FRAMES_DROPPED,
      g_param_spec_uint64("frames-dropped", "Frames dropped",
                          "Sampled frames skipped since start because the async worker was busy", 0, G_MAXUINT64, 0,
                          read_only));

  GstCaps* caps = gst_caps_from_string(GST_VIDEO_CAPS_MAKE(DFMON_VIDEO_FORMATS));
  gst_element_class_add_pad_template(element_class, gst_pad_template_new("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_element_class_add_pad_template(element_class, gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref(caps);

  gst_element_class_set_static_metadata(
      element_class, "dfmon deepfake face detector", "Filter/Analyzer/Video",
      "Scores faces for deepfakes (dlib HOG + landmarks, ONNX ensemble), posts dfmon-event element messages, "
      "attaches DfmonFaceMeta and optionally draws the faces; video passes through unchanged",
      "deepfake-monitor");

  trans_class->start = GST_DEBUG_FUNCPTR(gst_dfmon_detect_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_dfmon_detect_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_dfmon_detect_sink_event);
  filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR(gst_dfmon_detect_transform_frame_ip);

  gst_type_mark_as_plugin_api(GST_TYPE_DFMON_BACKEND, static_cast<GstPluginAPIFlags>(0));
}
