// Convolution and fully-connected layers for OpenCV DNN that run their products through the BLAS
// library (OpenBLAS). OpenCV 4.6's own CPU kernels reach ~60 GFLOP/s per core on our models where
// OpenBLAS's sgemm reaches 80-100, so these layers replace OpenCV's while our nets are imported.
#pragma once

#include <functional>
#include <opencv2/dnn.hpp>
#include <string>

namespace dfm::blas {

// True when the BLAS library this process runs is OpenBLAS (checked once, by symbol). Debian's
// reference BLAS is ~60x slower than OpenBLAS; with it the BLAS layers are not used.
bool optimized();
// "OpenBLAS 0.3.21 ..." or "reference BLAS".
std::string library_name();

// Process-wide thread count of the BLAS library (OpenBLAS only; no-op otherwise). With 1, each call
// runs on its caller's thread and the BLAS layers split their products over OpenCV's threads
// (cv::getNumThreads()) themselves; with more, each product is one multi-threaded BLAS call.
void set_threads(int n);

// Runs `build` (which creates a cv::dnn::Net) with the BLAS layers registered for the layer types
// "Convolution" and "InnerProduct" (and a vectorised "Erf", glibc's libmvec), then creates every layer of the net before unregistering them,
// so the override applies to this net only (another OpenCV user in the process keeps OpenCV's
// layers). Configurations the BLAS layers do not handle (grouped or 3-D convolutions, padding modes,
// products of two inputs) get OpenCV's own layer. Serialised by a mutex; the net's layers must run on
// the OpenCV CPU backend.
cv::dnn::Net build_net(const std::function<cv::dnn::Net()>& build);

// How many layers of `net` are ours (BLAS layers and Erf; for tests and logs).
int count_layers(cv::dnn::Net& net);

}  // namespace dfm::blas
