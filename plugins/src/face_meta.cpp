// DfmonFaceMeta registration; copies follow buffer copies, boxes follow scaling (videoscale).
#include <gst/video/video.h>

#include <cstring>

#include "face_meta_impl.h"

namespace {

gboolean face_meta_init(GstMeta* meta, gpointer, GstBuffer*) {
  auto* m = reinterpret_cast<DfmonFaceMeta*>(meta);
  m->pts_s = 0;
  m->n_faces = 0;
  m->faces = nullptr;
  return TRUE;
}

void face_meta_free(GstMeta* meta, GstBuffer*) {
  auto* m = reinterpret_cast<DfmonFaceMeta*>(meta);
  g_free(m->faces);
  m->faces = nullptr;
  m->n_faces = 0;
}

gboolean face_meta_transform(GstBuffer* dest, GstMeta* meta, GstBuffer*, GQuark type, gpointer data) {
  auto* src = reinterpret_cast<DfmonFaceMeta*>(meta);
  if (GST_META_TRANSFORM_IS_COPY(type)) {
    return dfmon_buffer_add_face_meta(dest, src->pts_s, src->faces, src->n_faces) != nullptr;
  }
  if (GST_VIDEO_META_TRANSFORM_IS_SCALE(type)) {
    auto* t = static_cast<GstVideoMetaTransform*>(data);
    const int iw = GST_VIDEO_INFO_WIDTH(t->in_info), ih = GST_VIDEO_INFO_HEIGHT(t->in_info);
    const int ow = GST_VIDEO_INFO_WIDTH(t->out_info), oh = GST_VIDEO_INFO_HEIGHT(t->out_info);
    if (iw <= 0 || ih <= 0) return FALSE;
    DfmonFaceMeta* out = dfmon_buffer_add_face_meta(dest, src->pts_s, src->faces, src->n_faces);
    if (!out) return FALSE;
    for (guint i = 0; i < out->n_faces; ++i) {
      DfmonFace& f = out->faces[i];
      f.x = f.x * ow / iw;
      f.y = f.y * oh / ih;
      f.width = f.width * ow / iw;
      f.height = f.height * oh / ih;
    }
    return TRUE;
  }
  return FALSE;  // crops, rotations, ...: the boxes would be wrong, so the meta is dropped
}

}  // namespace

GType dfmon_face_meta_api_get_type(void) {
  static GType type = 0;
  static const gchar* tags[] = {GST_META_TAG_VIDEO_STR, GST_META_TAG_VIDEO_ORIENTATION_STR, GST_META_TAG_VIDEO_SIZE_STR,
                                nullptr};
  if (g_once_init_enter(&type)) {
    GType t = gst_meta_api_type_register(DFMON_FACE_META_API_NAME, tags);
    g_once_init_leave(&type, t);
  }
  return type;
}

const GstMetaInfo* dfmon_face_meta_get_info(void) {
  static const GstMetaInfo* info = nullptr;
  if (g_once_init_enter(&info)) {
    const GstMetaInfo* i =
        gst_meta_register(dfmon_face_meta_api_get_type(), DFMON_FACE_META_IMPL_NAME, sizeof(DfmonFaceMeta),
                          face_meta_init, face_meta_free, face_meta_transform);
    g_once_init_leave(&info, i);
  }
  return info;
}

DfmonFaceMeta* dfmon_buffer_add_face_meta(GstBuffer* buffer, gdouble pts_s, const DfmonFace* faces, guint n) {
  g_return_val_if_fail(gst_buffer_is_writable(buffer), nullptr);
  auto* m = reinterpret_cast<DfmonFaceMeta*>(gst_buffer_add_meta(buffer, dfmon_face_meta_get_info(), nullptr));
  if (!m) return nullptr;
  m->pts_s = pts_s;
  m->n_faces = n;
  m->faces = n ? static_cast<DfmonFace*>(g_memdup2(faces, n * sizeof(DfmonFace))) : nullptr;
  return m;
}
