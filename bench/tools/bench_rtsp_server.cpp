// dfm_bench_rtsp_server: N RTSP mounts of one pre-encoded H.264 clip on 127.0.0.1, for `dfmon bench`.
//
//   dfm_bench_rtsp_server --file clip.mp4 [--mounts N] [--mount /cam] [--port P]
//
// Serves rtsp://127.0.0.1:PORT/cam0 ... /cam{N-1}. Each client gets its own pipeline
// (filesrc ! qtdemux ! h264parse ! rtph264pay, not shared), paced in real time by the server's clock,
// starting at the clip's beginning. Nothing is decoded or re-encoded, so N streams cost the server
// almost nothing, unlike tests' dfm_rtsp_server (one x264 encoder per stream) whose encoders would
// compete with the monitor for the same cores. The clip must be H.264 in MP4 and long enough for the
// measurement: at its end a stream ends.
//
// Prints "READY rtsp://127.0.0.1:PORT/cam" (the mount prefix; append the index) on stdout once it
// accepts connections; exits 0 on SIGINT/SIGTERM.
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "rtsp_tool_util.h"

namespace {

int usage(const char* why) {
  std::fprintf(stderr,
               "dfm_bench_rtsp_server: %s\nusage: dfm_bench_rtsp_server --file clip.mp4 [--mounts N] [--mount /cam] [--port P]\n",
               why);
  return 2;
}

using dfm_rtsp_tool::quoted;

}  // namespace

int main(int argc, char** argv) {
  int port = 0, mounts = 1;
  std::string prefix = "/cam", file;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    const bool has_value = i + 1 < argc;
    if (k == "--port" && has_value) port = std::atoi(argv[++i]);
    else if (k == "--mounts" && has_value) mounts = std::atoi(argv[++i]);
    else if (k == "--mount" && has_value) prefix = argv[++i];
    else if (k == "--file" && has_value) file = argv[++i];
    else return usage(("unknown or incomplete argument " + k).c_str());
  }
  if (file.empty() || access(file.c_str(), R_OK) != 0) return usage("--file: need a readable H.264 MP4 clip");
  if (port < 0 || port > 65535) return usage("--port must be 0..65535");
  if (mounts < 1 || mounts > 256) return usage("--mounts must be 1..256");
  if (prefix.empty() || prefix[0] != '/') return usage("--mount must start with /");

  gst_init(&argc, &argv);
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  GstRTSPServer* server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server, "127.0.0.1");
  gst_rtsp_server_set_service(server, std::to_string(port).c_str());
  const std::string launch =
      "( filesrc location=" + quoted(file) + " ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )";
  GstRTSPMountPoints* mp = gst_rtsp_server_get_mount_points(server);
  for (int i = 0; i < mounts; ++i) {
    GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(factory, launch.c_str());
    gst_rtsp_media_factory_set_shared(factory, FALSE);
    gst_rtsp_mount_points_add_factory(mp, (prefix + std::to_string(i)).c_str(), factory);  // takes the factory
  }
  g_object_unref(mp);
  const guint source_id = gst_rtsp_server_attach(server, nullptr);
  if (source_id == 0) {
    std::fprintf(stderr, "dfm_bench_rtsp_server: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::printf("READY rtsp://127.0.0.1:%d%s\n", gst_rtsp_server_get_bound_port(server), prefix.c_str());
  std::fflush(stdout);
  g_unix_signal_add(SIGINT, &dfm_rtsp_tool::quit_loop_on_signal, loop);
  g_unix_signal_add(SIGTERM, &dfm_rtsp_tool::quit_loop_on_signal, loop);
  g_main_loop_run(loop);
  g_source_remove(source_id);
  g_object_unref(server);
  g_main_loop_unref(loop);
  return 0;
}
