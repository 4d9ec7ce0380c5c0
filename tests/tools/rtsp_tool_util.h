// Pieces shared by the RTSP test servers (tests/tools/rtsp_server.cpp, bench/tools/bench_rtsp_server.cpp).
#pragma once

#include <glib.h>

#include <string>

namespace dfm_rtsp_tool {

// gst-launch syntax: a quoted string with backslash escapes (file names with spaces or quotes).
inline std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// g_unix_signal_add handler: SIGINT/SIGTERM end the main loop, so the server exits cleanly.
inline gboolean quit_loop_on_signal(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop*>(loop));
  return G_SOURCE_CONTINUE;
}

}  // namespace dfm_rtsp_tool
