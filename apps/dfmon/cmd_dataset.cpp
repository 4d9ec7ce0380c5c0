// `dfmon dataset extract|synth`: build seed-layout training data from real footage.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "app.h"
#include "dfm/common/log.h"
#include "dfm/dataset/dataset.h"

namespace dfm::app {

void register_dataset(CLI::App& root, GlobalOptions& g, int* exit_code) {
  CLI::App* cmd = root.add_subcommand("dataset", "Build training data: aligned real crops and synthetic fakes");
  cmd->require_subcommand(1);

  auto inputs = std::make_shared<std::vector<std::string>>();
  auto ex = std::make_shared<ExtractOptions>();
  CLI::App* extract = cmd->add_subcommand("extract", "Aligned real face crops from videos/photos into OUT/{train,val}/real");
  extract->add_option("inputs", *inputs, "Videos, images or directories (recursive)")->required();
  extract->add_option("--out", ex->out_dir, "Output dataset directory")->required();
  extract->add_option("--val-fraction", ex->val_fraction, "Share of source groups (videos/identities) put in val");
  extract->add_option("--fps", ex->video_fps, "Frames sampled per second of video");
  extract->add_option("--max-per-source", ex->max_per_source, "Crops kept per video at most");
  extract->add_option("--dedup", ex->dedup_threshold, "Near-duplicate threshold (mean abs grey difference of thumbnails)");
  extract->add_option("--size", ex->crop_size, "Crop side in px");
  extract->add_option("--margin", ex->margin, "Context around the face, fraction of face size");
  extract->add_flag("--all-faces", ex->all_faces, "Keep every face, not only the largest");
  extract->add_option("--upsample", ex->detector.upsample, "Detector upsampling steps")->check(CLI::Range(0, 2));
  extract->callback([&g, inputs, ex, exit_code] {
    if (auto st = apply_globals(g); !st.ok()) {
      *exit_code = fail(st);
      return;
    }
    ex->detector.min_face = 24;
    ex->detector.max_width = 960;
    auto log = get_logger("dataset");
    int64_t n = 0;
    auto stats = extract_dataset(*inputs, *ex, [&](const std::string& f) {
      if (++n % 500 == 0) log->info("{} sources read (now {})", n, f);
    });
    if (!stats.ok()) {
      *exit_code = fail(stats.status());
      return;
    }
    const ExtractStats& s = *stats;
    std::printf("%s\n", nlohmann::json{{"out", ex->out_dir}, {"sources", s.sources}, {"groups", s.groups},
                                       {"images_read", s.images_read}, {"frames_read", s.frames_read},
                                       {"crops", s.faces}, {"train", s.train}, {"val", s.val},
                                       {"duplicates_skipped", s.duplicates_skipped}, {"no_face", s.no_face},
                                       {"errors", s.errors}}
                            .dump()
                            .c_str());
    *exit_code = kExitOk;
  });

  auto sy = std::make_shared<SynthOptions>();
  CLI::App* synth = cmd->add_subcommand("synth", "Synthetic fakes (self-blending, cross-identity swaps) from the real crops");
  synth->add_option("dir", sy->dir, "Dataset directory written by `dataset extract`")->required();
  synth->add_option("--per-real", sy->per_real, "Fakes per real crop");
  synth->add_option("--swap-fraction", sy->swap_fraction, "Share of fakes made by swapping in another identity");
  synth->add_option("--seed", sy->seed, "Random seed (same seed, same fakes)");
  synth->add_flag("--balanced-detail", sy->balanced_detail,
                  "Make faces as often sharper as softer than their surroundings (default: mostly softer)");
  synth->callback([&g, sy, exit_code] {
    if (auto st = apply_globals(g); !st.ok()) {
      *exit_code = fail(st);
      return;
    }
    auto stats = synthesize_fakes(*sy);
    if (!stats.ok()) {
      *exit_code = fail(stats.status());
      return;
    }
    std::printf("%s\n", nlohmann::json{{"dir", sy->dir}, {"reals", stats->reals}, {"self_blended", stats->self_blended},
                                       {"swapped", stats->swapped}, {"skipped", stats->skipped}}
                            .dump()
                            .c_str());
    *exit_code = kExitOk;
  });

  struct FakeVideoCli {
    std::string input, output;
    FakeVideoOptions options;
  };
  auto fv = std::make_shared<FakeVideoCli>();
  CLI::App* fake = cmd->add_subcommand("fake-video", "Write a copy of a clip whose faces are self-blended (a synthetic fake for demos/tests)");
  fake->add_option("input", fv->input, "Source video")->required();
  fake->add_option("output", fv->output, "Output video (.mp4, MPEG-4 Part 2)")->required();
  fake->add_option("--seed", fv->options.seed, "Random seed of the blend (same seed, same clip)");
  fake->add_option("--start", fv->options.start_s, "Leave frames before this time untouched");
  fake->add_option("--max-frames", fv->options.max_frames, "Stop after this many frames (0 = whole clip)");
  fake->callback([&g, fv, exit_code] {
    if (auto st = apply_globals(g); !st.ok()) {
      *exit_code = fail(st);
      return;
    }
    auto stats = synthesize_fake_video(fv->input, fv->output, fv->options);
    if (!stats.ok()) {
      *exit_code = fail(stats.status());
      return;
    }
    std::printf("%s\n", nlohmann::json{{"output", fv->output}, {"frames", stats->frames}, {"faces_blended", stats->faces_blended},
                                       {"fps", stats->fps}}.dump().c_str());
    *exit_code = kExitOk;
  });
}

}  // namespace dfm::app
