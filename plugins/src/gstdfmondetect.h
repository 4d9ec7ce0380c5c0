// dfmondetect: a passthrough video filter that runs the dfmon core (detect/track/align/ensemble/EMA
// + hysteresis) on frames sampled by PTS, posts dfmon.event/1 element messages, attaches
// DfmonFaceMeta to analysed buffers and optionally draws the faces.
#pragma once

#include <gst/gst.h>
#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

#define GST_TYPE_DFMON_DETECT (gst_dfmon_detect_get_type())
G_DECLARE_FINAL_TYPE(GstDfmonDetect, gst_dfmon_detect, GST, DFMON_DETECT, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE(dfmondetect);

G_END_DECLS
