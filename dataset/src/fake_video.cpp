// Synthetic fake clips: self-blending applied in the aligned crop, then warped back into each frame.
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "dfm/dataset/dataset.h"
#include "dfm/pipeline/decoder.h"

namespace dfm {

Result<FakeVideoStats> synthesize_fake_video(const std::string& input, const std::string& output,
                                             const FakeVideoOptions& o) {
  if (o.fourcc.size() != 4) return InvalidArgument("--fourcc: needs 4 characters");
  DecodeOptions d;
  d.sample_fps = 0;  // every frame
  DFM_ASSIGN_OR_RETURN(auto dec, VideoDecoder::open(input, d));
  DetectorOptions det;
  det.max_width = 640;
  det.min_face = 40;
  DFM_ASSIGN_OR_RETURN(auto detector, make_face_detector(det));
  const AlignOptions align{224, 0.25};
  FakeVideoStats stats;
  cv::VideoWriter writer;
  std::vector<Frame> pending;  // the first two frames, held until the frame rate is known
  auto process = [&](Frame& f) -> Status {
    if (f.pts_s >= o.start_s) {
      auto faces = detector->detect(f.bgr);
      if (!faces.ok()) return faces.status();
      for (const auto& face : *faces) {
        cv::Mat m = alignment_transform(face.landmarks, align);
        cv::Mat crop;
        cv::warpAffine(f.bgr, crop, m, cv::Size(align.size, align.size), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
        cv::Mat mask;
        cv::Mat fake = self_blend(crop, transform_landmarks(face.landmarks, m), o.seed, &mask);
        // Back into the frame: inverse warp of the blended crop and of its mask, then composite.
        cv::Mat inv;
        cv::invertAffineTransform(m, inv);
        cv::Mat back, back_mask;
        cv::warpAffine(fake, back, inv, f.bgr.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
        cv::warpAffine(mask, back_mask, inv, f.bgr.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
        cv::Mat src, dst, m3;
        back.convertTo(src, CV_32FC3);
        f.bgr.convertTo(dst, CV_32FC3);
        cv::Mat ch[] = {back_mask, back_mask, back_mask};
        cv::merge(ch, 3, m3);
        cv::Mat out = src.mul(m3) + dst.mul(cv::Scalar(1, 1, 1) - m3);
        out.convertTo(f.bgr, CV_8UC3);
        stats.faces_blended++;
      }
    }
    writer.write(f.bgr);
    stats.frames++;
    return Status::Ok();
  };
  while (o.max_frames <= 0 || stats.frames + static_cast<int64_t>(pending.size()) < o.max_frames) {
    DFM_ASSIGN_OR_RETURN(std::optional<Frame> next, dec->next());
    if (!next) break;
    if (!writer.isOpened()) {
      pending.push_back(std::move(*next));
      if (pending.size() < 2) continue;
      const double dt = pending[1].pts_s - pending[0].pts_s;
      stats.fps = dt > 1e-3 ? 1.0 / dt : 25.0;
      const int cc = cv::VideoWriter::fourcc(o.fourcc[0], o.fourcc[1], o.fourcc[2], o.fourcc[3]);
      if (!writer.open(output, cv::CAP_FFMPEG, cc, stats.fps, pending[0].bgr.size())) {
        return IoError(output + ": cannot open for writing with fourcc " + o.fourcc);
      }
      for (auto& p : pending) DFM_RETURN_IF_ERROR(process(p));
      pending.clear();
      continue;
    }
    DFM_RETURN_IF_ERROR(process(*next));
  }
  if (!writer.isOpened()) return InvalidArgument(input + ": fewer than two frames");
  writer.release();
  return stats;
}

}  // namespace dfm
