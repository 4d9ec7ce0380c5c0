// ShapeModel: see shape_model.h.
#include "shape_model.h"

#include <dlib/serialize.h>

namespace dfm::detail {
namespace {

// Trees ahead whose leaves are being fetched while one is summed (measured: BM_Landmarks720p).
constexpr size_t kPrefetchTrees = 4;

}  // namespace

Result<std::shared_ptr<const ShapeModel>> ShapeModel::load(const std::string& path) {
  auto m = std::make_shared<ShapeModel>();
  try {
    // dlib's own deserialisers, field by field, in the order dlib::serialize(shape_predictor) writes.
    int version = 0;
    dlib::deserialize(path) >> version >> m->initial_shape_ >> m->forests_ >> m->anchor_idx_ >> m->deltas_;
    if (version != 1) return InvalidArgument("unsupported shape predictor version " + std::to_string(version));
  } catch (const std::exception& e) {
    return InvalidArgument(e.what());
  }
  const size_t n = static_cast<size_t>(m->initial_shape_.size());
  if (n == 0 || n % 2 != 0 || m->anchor_idx_.size() != m->forests_.size() || m->deltas_.size() != m->forests_.size()) {
    return InvalidArgument("inconsistent shape predictor (shape, cascades, anchors and deltas disagree)");
  }
  for (size_t c = 0; c < m->forests_.size(); ++c) {
    if (m->anchor_idx_[c].size() != m->deltas_[c].size()) return InvalidArgument("inconsistent pixel anchors");
    for (unsigned long a : m->anchor_idx_[c]) {
      if (a >= n / 2) return InvalidArgument("pixel anchor outside the shape");
    }
    for (const auto& tree : m->forests_[c]) {
      if (tree.leaf_values.size() != tree.splits.size() + 1) return InvalidArgument("malformed regression tree");
      for (const auto& leaf : tree.leaf_values) {
        if (static_cast<size_t>(leaf.size()) != n) return InvalidArgument("leaf of the wrong size");
      }
      for (const auto& s : tree.splits) {
        if (s.idx1 >= m->deltas_[c].size() || s.idx2 >= m->deltas_[c].size()) {
          return InvalidArgument("split on a pixel that does not exist");
        }
      }
    }
  }
  return std::shared_ptr<const ShapeModel>(std::move(m));
}

dlib::full_object_detection ShapeModel::operator()(const dlib::cv_image<unsigned char>& img,
                                                   const dlib::rectangle& rect) const {
  dlib::matrix<float, 0, 1> current_shape = initial_shape_;
  const long n = current_shape.size();
  std::vector<float> pixels;
  std::vector<const float*> leaves;
  for (size_t c = 0; c < forests_.size(); ++c) {
    dlib::impl::extract_feature_pixel_values(img, rect, current_shape, initial_shape_, anchor_idx_[c], deltas_[c],
                                             pixels);
    // Every tree of a cascade reads the same pixel values, so all the walks can go first.
    const auto& forest = forests_[c];
    leaves.resize(forest.size());
    unsigned long leaf = 0;
    for (size_t t = 0; t < forest.size(); ++t) leaves[t] = &forest[t](pixels, leaf)(0);
    // Then the sum, in dlib's order (current_shape += leaf, tree by tree): the same float additions.
    const long bytes = n * static_cast<long>(sizeof(float));
    auto prefetch = [&](size_t t) {
      const char* p = reinterpret_cast<const char*>(leaves[t]);
      for (long b = 0; b < bytes; b += 64) __builtin_prefetch(p + b);
    };
    for (size_t t = 0; t < kPrefetchTrees && t < leaves.size(); ++t) prefetch(t);
    float* cur = &current_shape(0);
    for (size_t t = 0; t < leaves.size(); ++t) {
      if (t + kPrefetchTrees < leaves.size()) prefetch(t + kPrefetchTrees);
      const float* l = leaves[t];
      for (long k = 0; k < n; ++k) cur[k] += l[k];
    }
  }
  const dlib::point_transform_affine to_img = dlib::impl::unnormalizing_tform(rect);
  std::vector<dlib::point> parts(static_cast<size_t>(n / 2));
  for (size_t i = 0; i < parts.size(); ++i) parts[i] = to_img(dlib::impl::location(current_shape, i));
  return dlib::full_object_detection(rect, parts);
}

}  // namespace dfm::detail
