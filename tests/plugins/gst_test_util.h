// Helpers for the dfmondetect tests: load the built plugin, run parsed pipelines to EOS while
// collecting dfmon-event messages and per-buffer metas, and run the gst-* command-line tools.
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "dfm/plugins/face_meta.h"

namespace dfm::testing {

inline std::string source_path(const std::string& rel) {
  return std::string(DFM_SOURCE_DIR) + "/" + rel;
}
inline std::string clip(const std::string& name) {
  return source_path("samples/clips/" + name);
}

// gst_init once, with the build's plugin directory first on the plugin path (set before the registry
// is scanned) so the element under test is the one just built.
inline void init_gst_with_plugin() {
  static bool done = [] {
    g_setenv("GST_PLUGIN_PATH", DFM_GST_PLUGIN_DIR, TRUE);
    gst_init(nullptr, nullptr);
    return true;
  }();
  (void)done;
}

struct EventMsg {
  std::string type, stream, json;
  uint64_t seq = 0;
  double pts_s = 0, score = 0, raw = 0, duration_s = 0, peak = 0;
  int track = 0;
  cv::Rect bbox;
  std::map<std::string, double> models;
};

inline EventMsg parse_event(const GstStructure* s) {
  EventMsg e;
  e.type = gst_structure_get_string(s, "type") ? gst_structure_get_string(s, "type") : "";
  e.stream = gst_structure_get_string(s, "stream") ? gst_structure_get_string(s, "stream") : "";
  e.json = gst_structure_get_string(s, "json") ? gst_structure_get_string(s, "json") : "";
  guint64 seq = 0;
  gst_structure_get_uint64(s, "seq", &seq);
  e.seq = seq;
  gst_structure_get_double(s, "pts_s", &e.pts_s);
  gst_structure_get_double(s, "score", &e.score);
  gst_structure_get_double(s, "raw", &e.raw);
  gst_structure_get_double(s, "duration_s", &e.duration_s);
  gst_structure_get_double(s, "peak", &e.peak);
  gst_structure_get_int(s, "track", &e.track);
  gst_structure_get_int(s, "x", &e.bbox.x);
  gst_structure_get_int(s, "y", &e.bbox.y);
  gst_structure_get_int(s, "w", &e.bbox.width);
  gst_structure_get_int(s, "h", &e.bbox.height);
  const GstStructure* m = nullptr;
  if (gst_structure_get(s, "models", GST_TYPE_STRUCTURE, &m, nullptr) && m) {
    for (int i = 0; i < gst_structure_n_fields(m); ++i) {
      const char* name = gst_structure_nth_field_name(m, static_cast<guint>(i));
      double v = -1;
      gst_structure_get_double(m, name, &v);
      e.models[name] = v;
    }
    gst_structure_free(const_cast<GstStructure*>(m));
  }
  return e;
}

struct RunResult {
  bool reached_playing = false;
  bool eos = false;
  std::string error;  // first ERROR message text (+ debug), "" when none
  std::vector<EventMsg> events;
};

// Runs `description` (gst_parse_launch syntax) until EOS or an error, with a bus watch on a private
// main loop. `setup` may add pad probes to the elements before the pipeline starts.
// `after` runs once the loop has ended, before the pipeline is stopped (e.g. to read counters).
inline RunResult run_pipeline(const std::string& description, const std::function<void(GstElement*)>& setup = {},
                              const std::function<void(GstElement*)>& after = {}, int timeout_s = 240) {
  init_gst_with_plugin();
  RunResult out;
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &err);
  if (!pipeline || err) {
    out.error = std::string("parse: ") + (err ? err->message : "?");
    if (err) g_error_free(err);
    if (pipeline) gst_object_unref(pipeline);
    return out;
  }
  if (setup) setup(pipeline);
  GMainContext* ctx = g_main_context_new();
  g_main_context_push_thread_default(ctx);
  GMainLoop* loop = g_main_loop_new(ctx, FALSE);
  struct State {
    RunResult* out;
    GMainLoop* loop;
    GstElement* pipeline;
  } st{&out, loop, pipeline};
  GstBus* bus = gst_element_get_bus(pipeline);
  GSource* watch = gst_bus_create_watch(bus);
  g_source_set_callback(watch, G_SOURCE_FUNC(+[](GstBus*, GstMessage* msg, gpointer user) -> gboolean {
                          auto* s = static_cast<State*>(user);
                          switch (GST_MESSAGE_TYPE(msg)) {
                            case GST_MESSAGE_ELEMENT: {
                              const GstStructure* st = gst_message_get_structure(msg);
                              if (st && gst_structure_has_name(st, "dfmon-event"))
                                s->out->events.push_back(parse_event(st));
                              break;
                            }
                            case GST_MESSAGE_STATE_CHANGED:
                              if (GST_MESSAGE_SRC(msg) == GST_OBJECT(s->pipeline)) {
                                GstState now;
                                gst_message_parse_state_changed(msg, nullptr, &now, nullptr);
                                if (now == GST_STATE_PLAYING) s->out->reached_playing = true;
                              }
                              break;
                            case GST_MESSAGE_ERROR: {
                              GError* e = nullptr;
                              gchar* dbg = nullptr;
                              gst_message_parse_error(msg, &e, &dbg);
                              if (s->out->error.empty())
                                s->out->error = std::string(e ? e->message : "?") + " | " + (dbg ? dbg : "");
                              if (e) g_error_free(e);
                              g_free(dbg);
                              g_main_loop_quit(s->loop);
                              break;
                            }
                            case GST_MESSAGE_EOS:
                              s->out->eos = true;
                              g_main_loop_quit(s->loop);
                              break;
                            default:
                              break;
                          }
                          return TRUE;
                        }),
                        &st, nullptr);
  g_source_attach(watch, ctx);
  GSource* timer = g_timeout_source_new_seconds(static_cast<guint>(timeout_s));
  g_source_set_callback(
      timer,
      +[](gpointer user) -> gboolean {
        auto* s = static_cast<State*>(user);
        if (s->out->error.empty()) s->out->error = "timeout";
        g_main_loop_quit(s->loop);
        return FALSE;
      },
      &st, nullptr);
  g_source_attach(timer, ctx);

  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // The ERROR message that explains the failure is already on the bus: dispatch it.
    while (g_main_context_iteration(ctx, FALSE)) {
    }
    if (out.error.empty()) out.error = "state change failed without an error message";
  } else {
    g_main_loop_run(loop);
  }
  if (after) after(pipeline);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  // Messages posted while stopping (alert_end of open alerts) are drained here.
  while (g_main_context_iteration(ctx, FALSE)) {
  }
  g_source_destroy(timer);
  g_source_unref(timer);
  g_source_destroy(watch);
  g_source_unref(watch);
  gst_object_unref(bus);
  g_main_loop_unref(loop);
  g_main_context_pop_thread_default(ctx);
  g_main_context_unref(ctx);
  gst_object_unref(pipeline);
  return out;
}

inline guint64 get_u64(GstElement* pipeline, const char* element, const char* prop) {
  GstElement* el = gst_bin_get_by_name(GST_BIN(pipeline), element);
  guint64 v = G_MAXUINT64;
  if (el) {
    g_object_get(el, prop, &v, nullptr);
    gst_object_unref(el);
  }
  return v;
}

// Adds a buffer probe on `element`'s `pad`.
inline void probe(GstElement* pipeline, const char* element, const char* pad,
                  std::function<void(GstPad*, GstBuffer*)>* fn) {
  GstElement* el = gst_bin_get_by_name(GST_BIN(pipeline), element);
  ASSERT_NE(el, nullptr) << element;
  GstPad* p = gst_element_get_static_pad(el, pad);
  ASSERT_NE(p, nullptr) << element << "." << pad;
  gst_pad_add_probe(
      p, GST_PAD_PROBE_TYPE_BUFFER,
      +[](GstPad* pad, GstPadProbeInfo* info, gpointer user) -> GstPadProbeReturn {
        (*static_cast<std::function<void(GstPad*, GstBuffer*)>*>(user))(pad, GST_PAD_PROBE_INFO_BUFFER(info));
        return GST_PAD_PROBE_OK;
      },
      fn, nullptr);
  gst_object_unref(p);
  gst_object_unref(el);
}

// Exit status and combined stdout+stderr of a shell command.
inline std::pair<int, std::string> run_command(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

inline std::string plugin_env() {
  return std::string("GST_PLUGIN_PATH=") + DFM_GST_PLUGIN_DIR + " ";
}

}  // namespace dfm::testing
