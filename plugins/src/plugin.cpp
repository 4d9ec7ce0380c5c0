// libgstdfmon.so: registers the dfmondetect element.
#include <gst/gst.h>

#include "gstdfmondetect.h"

#ifndef DFM_VERSION
#define DFM_VERSION "0.0.0"
#endif
#define PACKAGE "dfmon"

static gboolean plugin_init(GstPlugin* plugin) {
  return GST_ELEMENT_REGISTER(dfmondetect, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, dfmon, "deepfake-monitor: deepfake face scoring on video",
                  plugin_init, DFM_VERSION, "unknown", "dfmon", "deepfake-monitor")
