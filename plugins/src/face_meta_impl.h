// Producer side of DfmonFaceMeta: API/impl registration and attaching faces to a buffer.
#pragma once

#include <gst/gst.h>

#include "dfm/plugins/face_meta.h"

GType dfmon_face_meta_api_get_type(void);
const GstMetaInfo* dfmon_face_meta_get_info(void);

// Adds a meta holding a copy of `faces` (n may be 0: "analysed, no face"). `buffer` must be writable.
DfmonFaceMeta* dfmon_buffer_add_face_meta(GstBuffer* buffer, gdouble pts_s, const DfmonFace* faces, guint n);
