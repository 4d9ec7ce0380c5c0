// ShapeModel (detectors/src/shape_model.h) against dlib::shape_predictor on the same model file: the
// landmarks must be bit-identical, for faces in sample photos and for off-centre, scaled and partly
// outside boxes; and broken model files are errors that say why.
#include "shape_model.h"

#include <gtest/gtest.h>

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>

#include <fstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dfm/common/paths.h"

namespace dfm {
namespace {

class ShapeModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = find_landmark_model();
    ASSERT_FALSE(path_.empty()) << "no landmark model (libdlib-data)";
    reference_ = new dlib::shape_predictor();
    dlib::deserialize(path_) >> *reference_;
    auto m = detail::ShapeModel::load(path_);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = new std::shared_ptr<const detail::ShapeModel>(std::move(m).value());
  }
  static void TearDownTestSuite() {
    delete reference_;
    delete model_;
  }
  static std::string path_;
  static dlib::shape_predictor* reference_;
  static std::shared_ptr<const detail::ShapeModel>* model_;
};
std::string ShapeModelTest::path_;
dlib::shape_predictor* ShapeModelTest::reference_ = nullptr;
std::shared_ptr<const detail::ShapeModel>* ShapeModelTest::model_ = nullptr;

TEST_F(ShapeModelTest, LandmarksAreBitIdenticalToDlibs) {
  ASSERT_EQ((*model_)->num_parts(), 68u);
  dlib::frontal_face_detector hog = dlib::get_frontal_face_detector();
  int boxes = 0;
  for (const char* name : {"obama2.jpg", "biden.jpg"}) {
    cv::Mat img = cv::imread(std::string(DFM_SOURCE_DIR) + "/samples/images/" + name, cv::IMREAD_GRAYSCALE);
    ASSERT_FALSE(img.empty()) << name;
    dlib::cv_image<unsigned char> view(img);
    std::vector<dlib::rectangle> faces = hog(view);
    ASSERT_FALSE(faces.empty()) << name;
    // The detected box, and boxes a tracker might hand over: shifted, scaled, half outside the image.
    std::vector<dlib::rectangle> rects;
    for (const auto& f : faces) {
      rects.push_back(f);
      rects.push_back(dlib::translate_rect(f, dlib::point(f.width() / 5, -f.height() / 7)));
      rects.push_back(dlib::centered_rect(f, f.width() * 3 / 2, f.height() * 3 / 2));
      rects.push_back(dlib::centered_rect(f, f.width() / 2, f.height() / 2));
      rects.push_back(dlib::translate_rect(f, dlib::point(-f.left() - f.width() / 2, 0)));
    }
    for (const auto& r : rects) {
      const dlib::full_object_detection want = (*reference_)(view, r);
      const dlib::full_object_detection got = (**model_)(view, r);
      ASSERT_EQ(got.num_parts(), want.num_parts());
      for (unsigned long i = 0; i < want.num_parts(); ++i) {
        ASSERT_EQ(got.part(i), want.part(i)) << name << " box " << r << " point " << i;
      }
      ++boxes;
    }
  }
  EXPECT_GE(boxes, 10);
}

TEST(ShapeModel, BrokenFilesAreErrorsThatSayWhy) {
  const std::string dir = ::testing::TempDir();
  auto missing = detail::ShapeModel::load(dir + "/no_such_model.dat");
  EXPECT_FALSE(missing.ok());
  const std::string garbage = dir + "/garbage_model.dat";
  std::ofstream(garbage) << "this is not a dlib model";
  EXPECT_FALSE(detail::ShapeModel::load(garbage).ok());
  // A valid dlib stream of another kind (version 1 and one empty shape): rejected as inconsistent.
  const std::string wrong = dir + "/wrong_model.dat";
  {
    dlib::matrix<float, 0, 1> empty;
    std::vector<std::vector<dlib::impl::regression_tree>> forests;
    std::vector<std::vector<unsigned long>> anchors;
    std::vector<std::vector<dlib::vector<float, 2>>> deltas;
    dlib::serialize(wrong) << 1 << empty << forests << anchors << deltas;
  }
  auto w = detail::ShapeModel::load(wrong);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("inconsistent"), std::string::npos) << w.status().message();
}

}  // namespace
}  // namespace dfm
