// Private GStreamer helpers for the decoder: one-time init, GError translation, swallowed-error tap.
#pragma once

#include <gst/gst.h>

#include <functional>
#include <string>

#include "dfm/common/status.h"

namespace dfm::gstutil {

// Caps strings and debug text can carry kilobytes of codec data; keep messages readable.
std::string shorten(std::string s, size_t max = 300);
std::string caps_string(const GstCaps* caps);

// Our Status from a GStreamer error: code by GError domain/code, message names the input and
// carries GError text plus (shortened) debug detail.
Status status_from_gerror(const std::string& input, const GError* err, const gchar* debug);
Status status_from_error_message(const std::string& input, GstMessage* error_msg);

// decodebin drops ERROR messages from an element it is still bringing to PAUSED (its autoplug
// "error filter"); a demuxer that fails at once (truncated header) then leaves the pipeline
// silent forever. The tap sees every ERROR posted inside `pipeline` before any bin can drop it
// and hands it to `on_error` (on a streaming thread; must be quick). Callers treat these as a
// fallback explanation only, since decodebin legitimately filters errors while trying factories.
void tap_errors(GstElement* pipeline, std::function<void(GstMessage*)> on_error);
// After this returns, `on_error` for `pipeline` is not running and will not run again.
void untap_errors(GstElement* pipeline);

}  // namespace dfm::gstutil
