// dfm_rtsp_server: a tiny RTSP server on 127.0.0.1 for live-source tests (H.264 from a clip or a pattern).
//
//   dfm_rtsp_server [--port N] [--mount /name] [--file clip.mp4 [--loop]]
//
// Prints "READY rtsp://127.0.0.1:PORT/name" on stdout once it accepts connections (--port 0 picks a
// free port and reports it), exits 0 on SIGINT/SIGTERM. Without --file it serves a live test pattern.
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "rtsp_tool_util.h"

namespace {

constexpr const char* kEncode =
    "videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=800 "
    "! rtph264pay name=pay0 pt=96 config-interval=-1";

struct Args {
  int port = 8554;
  std::string mount = "/test";
  std::string file;
  bool loop = false;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "dfm_rtsp_server: %s\nusage: dfm_rtsp_server [--port N] [--mount /name] [--file clip.mp4 [--loop]]\n",
               why);
  return 2;
}

using dfm_rtsp_tool::quoted;

// The looping feeder: decodes the clip in real time into an intervideosink, seeking back at EOS.
// A shared RTSP media reads it with intervideosrc, so clients see one endless live stream.
gboolean on_feeder_message(GstBus*, GstMessage* msg, gpointer pipeline) {
  auto* p = static_cast<GstElement*>(pipeline);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) {
    gst_element_seek_simple(p, GST_FORMAT_TIME, static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT),
                            0);
  } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* err = nullptr;
    gst_message_parse_error(msg, &err, nullptr);
    std::fprintf(stderr, "dfm_rtsp_server: feeder error: %s\n", err ? err->message : "?");
    if (err) g_error_free(err);
  }
  return G_SOURCE_CONTINUE;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    bool has_value = i + 1 < argc;
    if (k == "--port" && has_value)
      a.port = std::atoi(argv[++i]);
    else if (k == "--mount" && has_value)
      a.mount = argv[++i];
    else if (k == "--file" && has_value)
      a.file = argv[++i];
    else if (k == "--loop")
      a.loop = true;
    else
      return usage(("unknown or incomplete argument " + k).c_str());
  }
  if (a.port < 0 || a.port > 65535) return usage("--port must be 0..65535");
  if (a.mount.empty() || a.mount[0] != '/') return usage("--mount must start with /");
  if (!a.file.empty() && access(a.file.c_str(), R_OK) != 0) return usage(("cannot read " + a.file).c_str());

  gst_init(&argc, &argv);
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  GstElement* feeder = nullptr;
  std::string launch;
  if (a.file.empty()) {
    launch =
        std::string("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 ! ") +
        kEncode + " )";
  } else if (!a.loop) {
    launch = "( filesrc location=" + quoted(a.file) + " ! decodebin ! " + kEncode + " )";
  } else {
    std::string channel = "dfm-rtsp-" + std::to_string(getpid());
    std::string desc =
        "filesrc location=" + quoted(a.file) + " ! decodebin ! videoconvert ! intervideosink channel=" + channel;
    GError* err = nullptr;
    feeder = gst_parse_launch(desc.c_str(), &err);
    if (!feeder) {
      std::fprintf(stderr, "dfm_rtsp_server: %s\n", err ? err->message : "cannot build the feeder");
      return 1;
    }
    GstBus* bus = gst_element_get_bus(feeder);
    gst_bus_add_watch(bus, &on_feeder_message, feeder);
    gst_object_unref(bus);
    gst_element_set_state(feeder, GST_STATE_PLAYING);
    launch = "( intervideosrc channel=" + channel + " ! video/x-raw,framerate=25/1 ! " + kEncode + " )";
  }

  GstRTSPServer* server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server, "127.0.0.1");
  gst_rtsp_server_set_service(server, std::to_string(a.port).c_str());
  GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
  gst_rtsp_media_factory_set_launch(factory, launch.c_str());
  gst_rtsp_media_factory_set_shared(factory, TRUE);
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
  gst_rtsp_mount_points_add_factory(mounts, a.mount.c_str(), factory);  // takes the factory
  g_object_unref(mounts);

  guint source_id = gst_rtsp_server_attach(server, nullptr);
  if (source_id == 0) {
    std::fprintf(stderr, "dfm_rtsp_server: cannot listen on 127.0.0.1:%d\n", a.port);
    return 1;
  }
  std::printf("READY rtsp://127.0.0.1:%d%s\n", gst_rtsp_server_get_bound_port(server), a.mount.c_str());
  std::fflush(stdout);

  g_unix_signal_add(SIGINT, &dfm_rtsp_tool::quit_loop_on_signal, loop);
  g_unix_signal_add(SIGTERM, &dfm_rtsp_tool::quit_loop_on_signal, loop);
  g_main_loop_run(loop);

  g_source_remove(source_id);
  g_object_unref(server);
  if (feeder) {
    gst_element_set_state(feeder, GST_STATE_NULL);
    gst_object_unref(feeder);
  }
  g_main_loop_unref(loop);
  // _exit skips the exit-time leak check of sanitizer builds: LeakSanitizer's stop-the-world tracer
  // was seen to wedge for good in this server after a test had SIGSTOPped and continued it.
  std::fflush(nullptr);
  _exit(0);
}
