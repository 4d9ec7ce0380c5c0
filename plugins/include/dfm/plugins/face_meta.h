// DfmonFaceMeta: the faces dfmondetect scored on a buffer (track, smoothed/raw P(fake), box), for
// downstream elements and applications. Header-only on the consumer side: the API type is registered
// by libgstdfmon.so, so consumers look it up by name once the plugin is loaded (the element exists).
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define DFMON_FACE_META_API_NAME "DfmonFaceMetaAPI"
#define DFMON_FACE_META_IMPL_NAME "DfmonFaceMeta"

typedef struct {
  gint track;                // tracker id, stable while the face stays in view
  gdouble score;             // smoothed P(fake) of the track after this frame (EMA)
  gdouble raw;               // ensemble P(fake) of this frame
  gboolean alert;            // the track has an open alert
  gint x, y, width, height;  // face box in this buffer's pixels
} DfmonFace;

typedef struct {
  GstMeta meta;
  gdouble pts_s;  // stream time of the analysed frame, seconds
  guint n_faces;
  DfmonFace* faces;  // n_faces entries, owned by the meta
} DfmonFaceMeta;

// The registered API type, or 0 when the plugin has not been loaded.
static inline GType dfmon_face_meta_api_lookup(void) {
  return g_type_from_name(DFMON_FACE_META_API_NAME);
}

// The meta on `buffer`, or NULL (not an analysed frame, or plugin not loaded).
static inline DfmonFaceMeta* dfmon_buffer_get_face_meta(GstBuffer* buffer) {
  GType api = dfmon_face_meta_api_lookup();
  return api ? (DfmonFaceMeta*)gst_buffer_get_meta(buffer, api) : NULL;
}

G_END_DECLS
