// dlib's 68-point shape predictor (the ERT cascade of Kazemi & Sullivan) evaluated with the same
// operations in the same order as dlib::shape_predictor, so the landmarks are bit-identical, but
// faster: dlib sums each tree's leaf vector as soon as it has walked the tree, and so waits on memory
// for every one of them (15 cascades x 500 trees x 136 floats, ~4 MB of the 99 MB model per face,
// far beyond the core's caches). Here a cascade's trees are walked first and their leaves prefetched
// a few trees ahead of the sum.
#pragma once

#include <dlib/image_processing/full_object_detection.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>

#include <memory>
#include <string>
#include <vector>

#include "dfm/common/status.h"

namespace dfm::detail {

class ShapeModel {
 public:
  // Reads a dlib shape predictor file (version 1, as shape_predictor_68_face_landmarks.dat).
  static Result<std::shared_ptr<const ShapeModel>> load(const std::string& path);

  size_t num_parts() const { return static_cast<size_t>(initial_shape_.size() / 2); }

  // Same contract and result as dlib::shape_predictor::operator()(img, rect).
  dlib::full_object_detection operator()(const dlib::cv_image<unsigned char>& img, const dlib::rectangle& rect) const;

 private:
  dlib::matrix<float, 0, 1> initial_shape_;
  std::vector<std::vector<dlib::impl::regression_tree>> forests_;
  std::vector<std::vector<unsigned long>> anchor_idx_;
  std::vector<std::vector<dlib::vector<float, 2>>> deltas_;
};

}  // namespace dfm::detail
