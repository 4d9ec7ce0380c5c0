// `dfmon bench` groups: crop, audit, live. See bench.h and docs/benchmarks.md.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dfm/bench/bench.h"
#include "dfm/common/paths.h"
#include "dfm/detectors/face.h"
#include "dfm/pipeline/audit.h"
#include "dfm/pipeline/decoder.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace dfm::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Rounded number, or null when not finite (JSON has no NaN).
json jnum(double v, int digits = 3) {
  if (!std::isfinite(v)) return nullptr;
  const double p = std::pow(10.0, digits);
  return std::round(v * p) / p;
}

double jget(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : kNaN;
}

void say(const BenchOptions& o, const std::string& s) {
  if (o.log) o.log(s);
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

// Last lines of a log, for error messages.
std::string tail(const std::string& path, size_t lines = 6) {
  std::vector<std::string> all;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) all.push_back(line);
  }
  std::string s;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) s += (s.empty() ? "" : " | ") + all[i];
  return s;
}

std::array<double, 3> loadavg() {
  std::array<double, 3> a{kNaN, kNaN, kNaN};
  std::ifstream in("/proc/loadavg");
  in >> a[0] >> a[1] >> a[2];
  return a;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  }
  return "unknown";
}

// Other processes using CPU right now (over `interval_s`): "name (pid) 93%".
json busy_processes(double interval_s, double min_pct) {
  auto snapshot = [] {
    std::map<int, std::pair<double, std::string>> m;
    DIR* d = opendir("/proc");
    if (!d) return m;
    while (dirent* e = readdir(d)) {
      const int pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      const double cpu = proc_cpu_seconds(pid);
      if (cpu < 0) continue;
      std::string cmd = read_text("/proc/" + std::to_string(pid) + "/cmdline");
      std::replace(cmd.begin(), cmd.end(), '\0', ' ');
      if (cmd.size() > 120) cmd = cmd.substr(0, 117) + "...";
      m[pid] = {cpu, cmd};
    }
    closedir(d);
    return m;
  };
  auto a = snapshot();
  std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
  auto b = snapshot();
  std::vector<std::pair<double, std::string>> busy;
  const int self = static_cast<int>(getpid());
  for (const auto& [pid, v] : b) {
    auto it = a.find(pid);
    if (it == a.end() || pid == self) continue;
    const double pct = (v.first - it->second.first) / interval_s * 100.0;
    if (pct >= min_pct) busy.emplace_back(pct, v.second);
  }
  std::sort(busy.rbegin(), busy.rend());
  json out = json::array();
  for (const auto& [pct, cmd] : busy) out.push_back({{"cpu_pct", jnum(pct, 0)}, {"cmd", cmd}});
  return out;
}

std::string models_dir_of(const ModelSet& set) {
  return fs::path(set.models().front().card.card_path).parent_path().string();
}

std::string reference_script(const BenchOptions& o, const char* name) {
  return (fs::path(o.source_dir) / "bench" / "reference" / name).string();
}

bool have_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (::access((fs::path(dir) / name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// ffmpeg: the talking-head clip scaled to 720 rows, padded to 1280x720, 25 fps, H.264 (yuv420p).
Status make_720p_clip(const BenchOptions& o, const std::string& dst, double duration_s, bool live_profile) {
  if (!have_program("ffmpeg")) return NotFound("ffmpeg not found (Debian package ffmpeg): cannot generate the 720p25 clip");
  std::vector<std::string> argv = {"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                                   "-stream_loop", "-1", "-i", o.clip, "-t", std::to_string(duration_s),
                                   "-vf", "scale=-2:720:flags=bicubic,pad=1280:720:(ow-iw)/2:0,fps=25,format=yuv420p",
                                   "-an", "-c:v", "libx264"};
  if (live_profile) {
    // Like a camera: constant bitrate-ish, no B-frames, a key frame every second.
    for (const char* a : {"-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline", "-g", "25", "-bf", "0",
                          "-b:v", "2M", "-maxrate", "2M", "-bufsize", "2M"}) {
      argv.push_back(a);
    }
  } else {
    for (const char* a : {"-preset", "veryfast", "-crf", "20", "-g", "50"}) argv.push_back(a);
  }
  argv.push_back(dst);
  const std::string log = (fs::path(o.out_dir) / "ffmpeg.log").string();
  const int rc = run_process(argv, log, 300);
  if (rc != 0) return Internal("ffmpeg failed (exit " + std::to_string(rc) + "): " + tail(log));
  return Status::Ok();
}

// ==== crop ===========================================================================================

// Aligned face crops from the clip (the same crops go to the PyTorch reference as PNG files).
std::vector<cv::Mat> extract_crops(const std::string& clip, int want, std::string* source) {
  std::vector<cv::Mat> crops;
  DecodeOptions d;
  d.sample_fps = 4;
  auto dec = VideoDecoder::open(clip, d);
  auto det = make_face_detector(DetectorOptions{});
  if (dec.ok() && det.ok()) {
    while (static_cast<int>(crops.size()) < want) {
      auto f = (*dec)->next();
      if (!f.ok() || !f->has_value()) break;
      auto faces = (*det)->detect((**f).bgr);
      if (!faces.ok()) break;
      for (const auto& face : *faces) crops.push_back(align_face((**f).bgr, face, AlignOptions{}));
    }
  }
  if (!crops.empty()) {
    *source = "aligned faces from " + fs::path(clip).filename().string();
    return crops;
  }
  *source = "synthetic gradients (no face found in " + fs::path(clip).filename().string() + ")";
  for (int i = 0; i < want; ++i) {
    cv::Mat m(224, 224, CV_8UC3);
    for (int y = 0; y < 224; ++y) {
      for (int x = 0; x < 224; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x + 10 * i), uchar(y), uchar((x + y) / 2));
    }
    crops.push_back(m);
  }
  return crops;
}

json run_crop(const ModelSet& set_ref, std::shared_ptr<const ModelSet> set, const BenchOptions& o, int threads) {
  json out;
  const double min_time = o.quick ? 0.3 : 1.5;
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  std::string crop_source;
  say(o, "crop: extracting face crops");
  std::vector<cv::Mat> crops = extract_crops(o.clip, std::max(8, max_batch), &crop_source);
  const fs::path crop_dir = fs::path(o.out_dir) / "crops";
  std::error_code ec;
  fs::remove_all(crop_dir, ec);
  fs::create_directories(crop_dir, ec);
  for (size_t i = 0; i < crops.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "crop_%02zu.png", i);
    cv::imwrite((crop_dir / name).string(), crops[i]);
  }
  out["crops"] = crops.size();
  out["crop_source"] = crop_source;
  out["threads"] = threads;

  // One model alone, sgemm and the PyTorch reference get every thread; the ensemble runs per the
  // set's plan (by default the models side by side, the threads split), as the product does.
  set_inference_threads(threads);
  say(o, "crop: measuring sgemm");
  set_blas_threads(threads);  // the yardstick is BLAS on every thread; inference splits on OpenCV's pool
  const double sgemm = std::max(measure_sgemm_gflops(512, o.quick ? 0.3 : 1.0), measure_sgemm_gflops(1024, o.quick ? 0.3 : 1.0));
  set_inference_threads(threads);
  out["sgemm_gflops"] = jnum(sgemm, 2);
  out["sgemm_method"] = "cv::gemm, float32, 512x512 and 1024x1024, best run, " + std::to_string(threads) + " thread(s)";

  auto runner_r = EnsembleRunner::create(set);
  if (!runner_r.ok()) {
    out["error"] = runner_r.status().message();
    return out;
  }
  EnsembleRunner& runner = **runner_r;
  // Variants of the product's set, measured beside it for comparison: the same models one after another
  // on every thread (--sequential-models), and the product's plan on OpenCV's own convolution /
  // fully-connected kernels (--opencv-layers).
  auto variant = [&](bool parallel, bool blas_layers) -> std::unique_ptr<EnsembleRunner> {
    ModelSetOptions so;
    so.dir = models_dir_of(set_ref);
    so.names = set_ref.names();
    so.weights = set_ref.weights();
    so.backend = set_ref.backend();
    so.batch = set_ref.batch();
    so.threads = threads;
    so.parallel = parallel;
    so.blas_layers = blas_layers;
    auto sr = ModelSet::load(so);
    if (!sr.ok()) return nullptr;
    auto rr = EnsembleRunner::create(*sr);  // the runner keeps its set alive
    return rr.ok() ? std::move(rr).value() : nullptr;
  };
  std::unique_ptr<EnsembleRunner> seq_runner, stock_runner;
  if (set->thread_plan().lanes > 1) seq_runner = variant(false, set->blas_layers());
  if (set->blas_layers() && set->backend() == Backend::kCpu) stock_runner = variant(true, false);
  out["plan"] = {{"lanes", set->thread_plan().lanes}, {"threads_per_lane", set->thread_plan().threads_per_lane}};
  out["blas"] = blas_library();
  out["blas_layers"] = set->blas_layers();
  const auto& models = set_ref.models();
  std::vector<std::string> names = set_ref.names();

  // PyTorch reference (also counts each model's GFLOPs from its ONNX graph).
  say(o, "crop: PyTorch eager reference (bench/reference/crop_reference.py)");
  const std::string torch_json = (fs::path(o.out_dir) / "torch_crop.json").string();
  const std::string torch_log = (fs::path(o.out_dir) / "torch_crop.log").string();
  fs::remove(torch_json, ec);
  std::vector<std::string> batches_s;
  for (int b : o.batches) batches_s.push_back(std::to_string(b));
  std::vector<std::string> argv = {o.python, reference_script(o, "crop_reference.py"), "--models", models_dir_of(set_ref),
                                   "--names", join(names, ","), "--crops", crop_dir.string(), "--batches", join(batches_s, ","),
                                   "--threads", std::to_string(threads), "--min-time", o.quick ? "0.3" : "1.5", "--json", torch_json};
  for (const auto& c : o.checkpoints) {
    argv.push_back("--checkpoint");
    argv.push_back(c);
  }
  const int rc = run_process(argv, torch_log, o.quick ? 240 : 420);
  json torch = json::object();
  if (fs::exists(torch_json)) {
    try {
      torch = json::parse(read_text(torch_json));
    } catch (const json::exception& e) {
      torch = {{"ok", false}, {"error", std::string("unreadable output: ") + e.what()}};
    }
  } else {
    torch = {{"ok", false}, {"error", "reference failed (exit " + std::to_string(rc) + "): " + tail(torch_log)}};
  }

  // Model GFLOPs (from the reference's ONNX count) -> FLOP-bound limit per face.
  double ensemble_gflops = 0;
  bool all_flops = true;
  json mj = json::object();
  for (size_t k = 0; k < models.size(); ++k) {
    const std::string& n = models[k].card.name;
    json m = {{"file", fs::path(models[k].onnx_path).filename().string()}, {"max_batch", models[k].card.max_batch}};
    json tinfo = torch.contains("models") && torch["models"].contains(n) ? torch["models"][n] : json::object();
    const double gf = jget(tinfo, "gflops");
    m["gflops"] = jnum(gf, 3);
    m["limit_ms_per_face"] = jnum(gf / sgemm * 1000.0, 3);
    for (const char* key : {"source", "parity_max_abs_diff", "error"}) {
      if (tinfo.contains(key)) m[std::string("torch_") + key] = tinfo[key];
    }
    if (std::isfinite(gf)) ensemble_gflops += gf;
    else all_flops = false;
    mj[n] = m;
  }
  const double limit = all_flops ? ensemble_gflops / sgemm * 1000.0 : kNaN;
  out["models"] = mj;
  out["ensemble_gflops"] = all_flops ? jnum(ensemble_gflops, 3) : json(nullptr);

  json rows = json::array();
  for (int b : o.batches) {
    std::vector<cv::Mat> batch;
    for (int i = 0; i < b; ++i) batch.push_back(crops[static_cast<size_t>(i) % crops.size()]);
    json row = {{"batch", b}};
    json ocv = json::object();
    auto entry = [b](const Timing& t) {
      return json{{"ms_per_batch", jnum(t.median_ms)}, {"ms_per_face", jnum(t.median_ms / b)},
                  {"faces_per_s", jnum(1000.0 * b / t.median_ms, 2)}, {"reps", t.reps}};
    };
    set_inference_threads(threads);  // the ensemble row below switches to the plan
    for (size_t k = 0; k < models.size(); ++k) {
      say(o, "crop: " + models[k].card.name + " batch " + std::to_string(b));
      ocv[models[k].card.name] = entry(time_calls([&] { (void)runner.score_model(k, batch); }, min_time, 3, 1));
    }
    if (seq_runner) {
      say(o, "crop: ensemble (models in turn) batch " + std::to_string(b));
      ocv["ensemble_sequential"] = entry(time_calls([&] { (void)seq_runner->score(batch); }, min_time, 3, 1));
    }
    apply_thread_plan(set->thread_plan());
    if (stock_runner) {
      say(o, "crop: ensemble (OpenCV's own layers) batch " + std::to_string(b));
      ocv["ensemble_opencv_layers"] = entry(time_calls([&] { (void)stock_runner->score(batch); }, min_time, 3, 1));
    }
    say(o, "crop: ensemble batch " + std::to_string(b));
    ocv["ensemble"] = entry(time_calls([&] { (void)runner.score(batch); }, min_time, 3, 1));
    row["opencv"] = ocv;
    json tr = json::object();
    if (torch.contains("batches")) {
      for (const auto& r : torch["batches"]) {
        if (r.value("batch", 0) != b) continue;
        if (r.contains("models")) {
          for (auto it = r["models"].begin(); it != r["models"].end(); ++it) tr[it.key()] = it.value();
        }
        if (r.contains("ensemble")) tr["ensemble"] = r["ensemble"];
      }
    }
    row["torch"] = tr;
    row["limit_ms_per_face"] = jnum(limit);
    rows.push_back(row);
  }
  out["batches"] = rows;

  // Headline numbers: the largest batch (the live monitor's default models.batch is 8).
  const json& last = rows.back();
  out["at_batch"] = last["batch"];
  out["ensemble_ms_per_face"] = last["opencv"]["ensemble"]["ms_per_face"];
  out["torch_ms_per_face"] = last["torch"].contains("ensemble") ? last["torch"]["ensemble"]["ms_per_face"] : json(nullptr);
  out["limit_ms_per_face"] = jnum(limit);
  const double e = jget(last["opencv"]["ensemble"], "ms_per_face");
  const double tt = last["torch"].contains("ensemble") ? jget(last["torch"]["ensemble"], "ms_per_face") : kNaN;
  out["ratio_to_torch"] = jnum(e / tt, 3);
  out["ratio_to_limit"] = jnum(e / limit, 2);
  json tsum = {{"ok", torch.value("ok", false)}, {"threads", torch.value("threads", 0)}, {"torch", torch.value("torch", "")}};
  if (torch.contains("error")) tsum["error"] = torch["error"];
  tsum["log"] = fs::path(torch_log).filename().string();
  out["torch"] = tsum;

  // Plot: ms per face vs batch.
  std::vector<Series> series;
  std::vector<double> xs;
  for (int b : o.batches) xs.push_back(b);
  auto col = [&](const char* side, const std::string& name) {
    std::vector<double> ys;
    for (const auto& r : rows) ys.push_back(r[side].contains(name) ? jget(r[side][name], "ms_per_face") : kNaN);
    return ys;
  };
  for (const auto& n : names) series.push_back({n + " (OpenCV DNN)", xs, col("opencv", n), false});
  series.push_back({"ensemble (OpenCV DNN)", xs, col("opencv", "ensemble"), false});
  series.push_back({"ensemble (PyTorch eager)", xs, col("torch", "ensemble"), true});
  for (const auto& n : names) series.push_back({n + " (PyTorch eager)", xs, col("torch", n), true});
  std::vector<HLine> hl;
  if (std::isfinite(limit)) hl.push_back({"ensemble FLOP limit", limit});
  write_text((fs::path(o.out_dir) / "latency_vs_batch.svg").string(),
             svg_line_chart("Per-face latency vs batch size (" + std::to_string(threads) + " threads)", "batch size",
                            "ms per face", series, hl));
  out["plot"] = "latency_vs_batch.svg";
  return out;
}

// ==== audit ==========================================================================================

json run_audit(std::shared_ptr<const ModelSet> set, const BenchOptions& o, int threads) {
  json out;
  const std::string clip = (fs::path(o.work_dir) / "talking_head_720p25.mp4").string();
  const double duration = o.quick ? 7.0 : 21.0;
  say(o, "audit: generating a 720p25 clip (" + std::to_string(static_cast<int>(duration)) + " s) with ffmpeg");
  if (auto st = make_720p_clip(o, clip, duration, false); !st.ok()) {
    out["error"] = st.message();
    return out;
  }
  out["clip"] = {{"made_from", fs::path(o.clip).filename().string()}, {"width", 1280}, {"height", 720}, {"fps", 25},
                 {"duration_s", duration}, {"recipe", "ffmpeg scale=-2:720,pad=1280:720,fps=25, libx264 veryfast crf 20"}};
  AuditOptions ao;  // dfmon audit's defaults
  out["settings"] = {{"sample_fps", ao.sample_fps}, {"detect_every", ao.detect_every}, {"detector_max_width", ao.detector.max_width},
                     {"alpha", ao.smoothing.alpha}, {"threads", threads}};
  auto auditor = Auditor::create(set, ao);
  if (!auditor.ok()) {
    out["error"] = auditor.status().message();
    return out;
  }
  say(o, "audit: dfmon (C++)");
  InputReport rep = (*auditor)->audit(clip);
  if (!rep.ok) {
    out["error"] = rep.error;
    return out;
  }
  const double rtf = rep.duration_s / rep.elapsed_s;
  out["realtime_factor"] = jnum(rtf, 2);
  out["elapsed_s"] = jnum(rep.elapsed_s, 3);
  out["media_s"] = jnum(rep.duration_s, 3);
  out["frames_decoded"] = rep.frames_decoded;
  out["frames_analyzed"] = rep.frames_analyzed;
  out["faces_scored"] = rep.faces_scored;
  out["verdict"] = verdict_name(rep.verdict);

  // Where the time goes: decoding alone (whole clip, same sampling), detection + landmarks per analysed
  // frame and alignment per face (median over the first sampled frames).
  {
    say(o, "audit: stage timings (decode only, detector, alignment)");
    json stages;
    DecodeOptions dopt;
    dopt.sample_fps = ao.sample_fps;
    const auto d0 = Clock::now();
    std::vector<cv::Mat> sampled;
    if (auto dec = VideoDecoder::open(clip, dopt); dec.ok()) {
      while (true) {
        auto f = (*dec)->next();
        if (!f.ok() || !f->has_value()) break;
        if (sampled.size() < 12) sampled.push_back((**f).bgr);
      }
      stages["decode_s"] = jnum(seconds_since(d0), 3);
    }
    auto det = make_face_detector(ao.detector);
    if (det.ok() && !sampled.empty()) {
      std::vector<double> det_ms, align_ms;
      for (const auto& frame : sampled) {
        const auto t1 = Clock::now();
        auto faces = (*det)->detect(frame);
        det_ms.push_back(seconds_since(t1) * 1000);
        if (!faces.ok()) continue;
        for (const auto& face : *faces) {
          const auto t2 = Clock::now();
          cv::Mat crop = align_face(frame, face, ao.align);
          align_ms.push_back(seconds_since(t2) * 1000);
        }
      }
      auto median = [](std::vector<double> v) {
        if (v.empty()) return kNaN;
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      stages["detect_ms_per_frame"] = jnum(median(det_ms), 2);
      stages["align_ms_per_face"] = jnum(median(align_ms), 2);
      stages["frames_timed"] = sampled.size();
    }
    out["stages"] = stages;
  }

  // The boxes dfmon found, for a Python reference that has no face detector of its own.
  json frames = json::array();
  std::map<double, json> by_t;
  for (const auto& p : rep.timeline) by_t[p.t].push_back({p.bbox.x, p.bbox.y, p.bbox.width, p.bbox.height});
  for (const auto& [t, boxes] : by_t) frames.push_back({{"t", t}, {"boxes", boxes}});
  const std::string boxes_path = (fs::path(o.work_dir) / "dfmon_boxes.json").string();
  write_text(boxes_path, json{{"frames", frames}}.dump());

  say(o, "audit: Python reference (bench/reference/audit_reference.py)");
  const std::string py_json = (fs::path(o.out_dir) / "python_audit.json").string();
  const std::string py_log = (fs::path(o.out_dir) / "python_audit.log").string();
  std::error_code ec;
  fs::remove(py_json, ec);
  std::vector<std::string> argv = {o.python, reference_script(o, "audit_reference.py"), "--models", models_dir_of(*set),
                                   "--names", join(set->names(), ","), "--video", clip, "--sample-fps", std::to_string(ao.sample_fps),
                                   "--max-width", std::to_string(ao.detector.max_width), "--min-face", std::to_string(ao.detector.min_face),
                                   "--alpha", std::to_string(ao.smoothing.alpha), "--threads", std::to_string(threads),
                                   "--boxes", boxes_path, "--json", py_json};
  for (const auto& c : o.checkpoints) {
    argv.push_back("--checkpoint");
    argv.push_back(c);
  }
  const int rc = run_process(argv, py_log, o.quick ? 240 : 480);
  json py;
  if (fs::exists(py_json)) {
    try {
      py = json::parse(read_text(py_json));
    } catch (const json::exception& e) {
      py = {{"ok", false}, {"error", std::string("unreadable output: ") + e.what()}};
    }
  } else {
    py = {{"ok", false}, {"error", "reference failed (exit " + std::to_string(rc) + "): " + tail(py_log)}};
  }
  const double prtf = jget(py, "realtime_factor");
  out["python_realtime_factor"] = jnum(prtf, 2);
  out["speedup_vs_python"] = jnum(rtf / prtf, 2);
  py.erase("schema");
  py.erase("video");
  py["log"] = fs::path(py_log).filename().string();
  out["python"] = py;
  return out;
}

// ==== live ===========================================================================================

struct Scrape {
  double t = 0;
  std::vector<PromSample> samples;
};

Result<Scrape> scrape(int port, Clock::time_point t0) {
  auto body = http_get("127.0.0.1", port, "/metrics", 5.0);
  if (!body.ok()) return body.status();
  Scrape s;
  s.t = seconds_since(t0);
  s.samples = parse_prometheus(*body);
  return s;
}

std::string yaml_quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

// Exact share of observations <= bound when bound is a bucket edge (else NaN).
double fraction_at_most(const Histogram& h, double bound) {
  if (h.cumulative.empty() || !(h.cumulative.back() > 0)) return kNaN;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (std::fabs(h.bounds[i] - bound) < 1e-9) return h.cumulative[i] / h.cumulative.back();
  }
  return kNaN;
}

json live_step(std::shared_ptr<const ModelSet> set, const BenchOptions& o, const std::string& clip, int n, double window_s) {
  json step = {{"streams", n}, {"pass", false}};
  const std::string tag = "live_" + std::to_string(n);
  const std::string srv_log = (fs::path(o.out_dir) / (tag + "_server.log")).string();
  const std::string mon_log = (fs::path(o.out_dir) / (tag + "_dfmon.log")).string();
  std::error_code ec;
  fs::remove(srv_log, ec);
  fs::remove(mon_log, ec);

  Child server;
  if (auto st = server.start({o.rtsp_server_exe, "--port", "0", "--file", clip, "--mounts", std::to_string(n), "--mount", "/cam"},
                             srv_log, true);
      !st.ok()) {
    step["error"] = st.message();
    return step;
  }
  auto ready = server.read_line(20);
  if (!ready.ok() || ready->rfind("READY ", 0) != 0) {
    step["error"] = "RTSP server did not start: " + (ready.ok() ? *ready : ready.status().message()) + " " + tail(srv_log);
    return step;
  }
  const std::string base = ready->substr(6);  // rtsp://127.0.0.1:PORT/cam

  const int port = free_tcp_port();
  std::ostringstream y;
  y << "# written by dfmon bench (live, " << n << " streams)\n";
  y << "server: { listen: \"127.0.0.1:" << port << "\" }\n";
  y << "models:\n  dir: " << yaml_quote(models_dir_of(*set)) << "\n  use: [";
  for (size_t i = 0; i < set->models().size(); ++i) y << (i ? ", " : "") << set->models()[i].card.name;
  y << "]\n  weights: [";
  for (size_t i = 0; i < set->weights().size(); ++i) y << (i ? ", " : "") << set->weights()[i];
  y << "]\n  backend: " << o.backend << "\n  batch: 8\n";
  y << "streams:\n";
  for (int i = 0; i < n; ++i) y << "  - { id: cam" << i << ", uri: " << yaml_quote(base + std::to_string(i)) << ", transport: tcp }\n";
  y << "sinks:\n  - { type: websocket }\n";
  const std::string cfg = (fs::path(o.work_dir) / (tag + ".yaml")).string();
  write_text(cfg, y.str());

  const double startup_max = o.quick ? 25 : 30;
  std::vector<std::string> argv = {o.dfmon_exe, "--log-level", "warn"};
  if (o.opencv_layers) argv.push_back("--opencv-layers");
  if (o.threads > 0) {
    argv.push_back("--threads");
    argv.push_back(std::to_string(o.threads));
  }
  for (const char* a : {"watch", "--config"}) argv.push_back(a);
  argv.push_back(cfg);
  argv.push_back("--duration");
  argv.push_back(std::to_string(static_cast<int>(startup_max + window_s + 30)));  // safety net only
  Child mon;
  if (auto st = mon.start(argv, mon_log, false); !st.ok()) {
    step["error"] = st.message();
    return step;
  }
  const auto t0 = Clock::now();
  auto stream_labels = [&](int i) { return std::map<std::string, std::string>{{"stream", "cam" + std::to_string(i)}}; };
  // Up: every stream live and scoring faces.
  bool up = false;
  int live_streams = 0;
  std::string why = "no /metrics answer";
  while (seconds_since(t0) < startup_max) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    int code = 0;
    if (mon.wait(0, &code)) {
      step["error"] = "dfmon watch exited with " + std::to_string(code) + ": " + tail(mon_log);
      return step;
    }
    auto s = scrape(port, t0);
    if (!s.ok()) continue;
    int live = 0, scoring = 0;
    for (int i = 0; i < n; ++i) {
      live += prom_value(s->samples, "dfmon_stream_live", stream_labels(i)) > 0.5;
      scoring += prom_value(s->samples, "dfmon_faces_scored_total", stream_labels(i)) > 0;
    }
    live_streams = live;
    why = std::to_string(live) + "/" + std::to_string(n) + " streams live, " + std::to_string(scoring) + " scoring faces";
    if (live == n && scoring == n) {
      up = true;
      break;
    }
  }
  step["startup_s"] = jnum(seconds_since(t0), 1);
  if (!up && live_streams < n) {
    step["error"] = "not up after " + std::to_string(static_cast<int>(startup_max)) + " s: " + why;
    mon.stop(15);
    server.stop(5);
    return step;
  }
  // Every stream live but not all scoring yet: an overloaded monitor; measure it anyway.
  if (!up) step["note"] = "at the start of the window: " + why;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // past the first batches and queue fill
  auto a = scrape(port, t0);
  const double cpu_mon_a = proc_cpu_seconds(mon.pid()), cpu_srv_a = proc_cpu_seconds(server.pid());
  std::vector<double> tracks_sum(static_cast<size_t>(n), 0.0);
  int samples = 0;
  std::optional<Scrape> b;
  const auto w0 = Clock::now();
  while (seconds_since(w0) < window_s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    auto s = scrape(port, t0);
    if (!s.ok()) continue;
    ++samples;
    for (int i = 0; i < n; ++i) tracks_sum[static_cast<size_t>(i)] += prom_value(s->samples, "dfmon_active_tracks", stream_labels(i));
    b = std::move(s).value();
  }
  const double cpu_mon_b = proc_cpu_seconds(mon.pid()), cpu_srv_b = proc_cpu_seconds(server.pid());
  const long hwm_kb = proc_vm_hwm_kb(mon.pid());
  const int mon_rc = mon.stop(15);
  server.stop(5);
  if (!a.ok() || !b) {
    step["error"] = "lost /metrics during the window";
    return step;
  }
  const double dt = b->t - a->t;
  step["window_s"] = jnum(dt, 2);
  step["rss_mb"] = jnum(hwm_kb / 1024.0, 1);
  step["dfmon_cpu_pct"] = jnum((cpu_mon_b - cpu_mon_a) / dt * 100.0, 0);
  step["server_cpu_pct"] = jnum((cpu_srv_b - cpu_srv_a) / dt * 100.0, 0);
  step["dfmon_exit"] = mon_rc;
  json streams = json::array();
  double min_hz = std::numeric_limits<double>::infinity();
  double total_faces_hz = 0;
  int64_t drops_total = 0;
  bool all_ok = true;
  for (int i = 0; i < n; ++i) {
    auto lab = stream_labels(i);
    auto delta = [&](const char* name) { return prom_value(b->samples, name, lab) - prom_value(a->samples, name, lab); };
    const double faces = delta("dfmon_faces_scored_total");
    const double sampled = delta("dfmon_frames_sampled_total");
    const double decoded = delta("dfmon_frames_decoded_total");
    const double drops = delta("dfmon_frames_dropped_total") + delta("dfmon_crops_dropped_total");
    const double tracks = samples ? tracks_sum[static_cast<size_t>(i)] / samples : 0;
    const double face_hz = faces / dt / std::max(1.0, std::round(tracks));
    const bool live = prom_value(b->samples, "dfmon_stream_live", lab) > 0.5;
    const bool ok = live && tracks >= 0.5 && face_hz >= 4.9 && drops <= std::max(1.0, 0.02 * sampled);
    all_ok = all_ok && ok;
    min_hz = std::min(min_hz, face_hz);
    total_faces_hz += faces / dt;
    drops_total += static_cast<int64_t>(drops);
    streams.push_back({{"id", "cam" + std::to_string(i)}, {"per_face_hz", jnum(face_hz, 2)}, {"tracks", jnum(tracks, 2)},
                       {"decoded_fps", jnum(decoded / dt, 1)}, {"sampled_fps", jnum(sampled / dt, 2)},
                       {"drops", static_cast<int64_t>(drops)}, {"ok", ok}});
  }
  step["per_stream"] = streams;
  step["min_per_face_hz"] = jnum(min_hz, 2);
  step["faces_per_s"] = jnum(total_faces_hz, 1);
  step["drops"] = drops_total;
  Histogram h = histogram_delta(prom_histogram(b->samples, "dfmon_frame_to_event_seconds"),
                                prom_histogram(a->samples, "dfmon_frame_to_event_seconds"));
  step["latency_ms"] = {{"p50", jnum(histogram_quantile(h, 0.50) * 1000, 1)},
                        {"p95", jnum(histogram_quantile(h, 0.95) * 1000, 1)},
                        {"p99", jnum(histogram_quantile(h, 0.99) * 1000, 1)},
                        {"mean", jnum(h.count > 0 ? h.sum / h.count * 1000 : kNaN, 1)},
                        {"frac_le_250ms", jnum(fraction_at_most(h, 0.25), 4)},
                        {"n", static_cast<int64_t>(h.count)}};
  step["pass"] = all_ok;
  return step;
}

json run_live(std::shared_ptr<const ModelSet> set, const BenchOptions& o) {
  json out;
  const double window = o.live_window_s > 0 ? o.live_window_s : (o.quick ? 6.0 : 20.0);
  out["window_s"] = window;
  out["criteria"] = "pass: every stream live, each tracked face scored >= 4.9 Hz (5 Hz sampling, 2% slack for counting at the window edges), "
                    "frames+crops dropped in the window <= max(1, 2% of sampled frames)";
  if (::access(o.rtsp_server_exe.c_str(), X_OK) != 0) {
    out["error"] = "RTSP test server not found: " + o.rtsp_server_exe + " (build target dfm_bench_rtsp_server)";
    return out;
  }
  const std::string clip = (fs::path(o.work_dir) / "live_720p25.mp4").string();
  const double clip_s = window + 70;  // startup + warm-up + window + slack: streams must not reach the end
  say(o, "live: generating a 720p25 H.264 clip (" + std::to_string(static_cast<int>(clip_s)) + " s) with ffmpeg");
  if (auto st = make_720p_clip(o, clip, clip_s, true); !st.ok()) {
    out["error"] = st.message();
    return out;
  }
  out["source"] = "dfm_bench_rtsp_server: one process, one mount per stream, each client gets its own pipeline "
                  "(filesrc ! qtdemux ! h264parse ! rtph264pay) over the pre-encoded 1280x720 25 fps H.264 clip "
                  "(baseline, 2 Mbit/s, key frame every 25): no re-encoding, the server's CPU is reported separately";
  std::map<int, json> done;
  const auto t_start = Clock::now();
  const double budget = o.quick ? 60 : 330;
  auto run = [&](int k) -> bool {
    if (!done.count(k)) {
      say(o, "live: " + std::to_string(k) + " stream(s), " + std::to_string(static_cast<int>(window)) + " s");
      done[k] = live_step(set, o, clip, k, window);
      const json& s = done[k];
      say(o, "live: " + std::to_string(k) + " stream(s): " + (s.value("pass", false) ? "pass" : "fail") +
                 (s.contains("min_per_face_hz") ? ", min per-face rate " + s["min_per_face_hz"].dump() + " Hz" : "") +
                 (s.contains("error") ? ", " + s["error"].get<std::string>() : ""));
    }
    return done[k].value("pass", false);
  };
  auto time_left = [&] { return seconds_since(t_start) < budget; };
  const bool fixed = !o.live_streams.empty();
  const std::vector<int> ladder = fixed ? o.live_streams : o.quick ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 4, 8};
  int best = 0, first_fail = 0;
  if (fixed) {  // the given counts, each measured; the best is the largest that passed
    for (int k : ladder) {
      if (run(k)) best = std::max(best, k);
    }
  }
  for (int k : fixed ? std::vector<int>{} : ladder) {
    if (k > o.max_streams) break;
    if (run(k)) best = k;
    else {
      first_fail = k;
      break;
    }
  }
  if (!o.quick && !fixed) {
    // RSS at 8 streams is a target of its own: measure it even when fewer streams already failed.
    if (8 <= o.max_streams && !done.count(8) && time_left()) run(8);
    if (first_fail == 0) {
      for (int k : {12, 16}) {
        if (k > o.max_streams || !time_left()) break;
        if (run(k)) best = k;
        else {
          first_fail = k;
          break;
        }
      }
    }
    while (first_fail > best + 1 && time_left()) {  // bisect the gap
      const int mid = (best + first_fail) / 2;
      if (run(mid)) best = mid;
      else first_fail = mid;
    }
  }
  json steps = json::array();
  for (const auto& [k, s] : done) steps.push_back(s);
  out["steps"] = steps;
  out["max_streams_5hz"] = best;
  out["max_streams_tested"] = done.rbegin()->first;
  if (done.count(1) && done[1].contains("latency_ms")) {
    out["latency_ms"] = done[1]["latency_ms"];
  } else {
    out["latency_ms"] = {{"p50", nullptr}, {"p95", nullptr}, {"p99", nullptr}};
  }
  out["latency_ms"]["streams"] = 1;
  out["latency_method"] = "dfmon_frame_to_event_seconds histogram over the window (frame leaves the decoder -> its score); "
                          "quantiles interpolated linearly inside the /metrics buckets (0.1, 0.25, 0.5, 1 s ...), so they "
                          "are estimates; mean and frac_le_250ms (a bucket edge) are exact";
  int rss_at = done.count(8) ? 8 : done.rbegin()->first;
  out["rss_mb"] = done[rss_at].contains("rss_mb") ? done[rss_at]["rss_mb"] : json(nullptr);
  out["rss_at_streams"] = rss_at;

  std::vector<double> xs, hz, p95;
  for (const auto& [k, s] : done) {
    xs.push_back(k);
    hz.push_back(s.contains("min_per_face_hz") ? jget(s, "min_per_face_hz") : 0.0);
  }
  write_text((fs::path(o.out_dir) / "rate_vs_streams.svg").string(),
             svg_line_chart("Per-face scoring rate vs concurrent 720p25 streams", "streams",
                            "slowest stream: scores per face per second", {{"slowest stream", xs, hz, false}},
                            {{"target 5 Hz", 5.0}}));
  out["plot"] = "rate_vs_streams.svg";
  return out;
}

}  // namespace

json run_bench(std::shared_ptr<const ModelSet> set, const BenchOptions& o) {
  json out;
  out["schema"] = "dfmon.bench/1";
  {
    char buf[32];
    std::time_t now = std::time(nullptr);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    out["date"] = buf;
  }
  out["quick"] = o.quick;
  out["groups"] = o.groups;
  // Every inference thread in all (load_models applied the plan, so OpenCV's own count is per lane).
  const int threads = set->thread_plan().total();
  const auto la0 = loadavg();
  say(o, "machine: sampling other processes' CPU use for 1 s");
  out["machine"] = {{"cpu", cpu_model()},
                    {"cores", static_cast<int>(std::thread::hardware_concurrency())},
                    {"opencv", CV_VERSION},
                    {"threads", threads},
                    {"loadavg_start", {jnum(la0[0], 2), jnum(la0[1], 2), jnum(la0[2], 2)}},
                    {"busy_processes_start", busy_processes(1.0, 10.0)}};
  json mj = json::array();
  for (const auto& m : set->models()) {
    mj.push_back({{"name", m.card.name}, {"architecture", m.card.architecture}, {"file", fs::path(m.onnx_path).filename().string()},
                  {"sha256", m.sha256}});
  }
  out["models"] = mj;
  const auto t0 = Clock::now();
  auto has = [&](const char* g) { return std::find(o.groups.begin(), o.groups.end(), g) != o.groups.end(); };
  if (has("crop")) {
    const auto g0 = Clock::now();
    out["crop"] = run_crop(*set, set, o, threads);
    out["crop"]["wall_s"] = jnum(seconds_since(g0), 1);
  }
  if (has("audit")) {
    const auto g0 = Clock::now();
    out["audit"] = run_audit(set, o, threads);
    out["audit"]["wall_s"] = jnum(seconds_since(g0), 1);
  }
  if (has("live")) {
    const auto g0 = Clock::now();
    out["live"] = run_live(set, o);
    out["live"]["wall_s"] = jnum(seconds_since(g0), 1);
  }
  const auto la1 = loadavg();
  out["machine"]["loadavg_end"] = {jnum(la1[0], 2), jnum(la1[1], 2), jnum(la1[2], 2)};
  out["wall_s"] = jnum(seconds_since(t0), 1);
  write_text((fs::path(o.out_dir) / "bench.json").string(), out.dump(2) + "\n");
  return out;
}

// ==== tables =========================================================================================

namespace {

std::string fmt(const json& v, const char* f = "%.2f") {
  if (!v.is_number()) return "-";
  char b[64];
  std::snprintf(b, sizeof b, f, v.get<double>());
  return b;
}

const json& null_json() {
  static const json n;
  return n;
}

// j[key] without the const operator[]'s undefined behaviour on a missing key.
const json& g(const json& j, const std::string& key) {
  if (!j.is_object()) return null_json();
  auto it = j.find(key);
  return it == j.end() ? null_json() : *it;
}

const json& at(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) cur = &g(*cur, k);
  return *cur;
}

}  // namespace

std::string format_tables(const json& r) {
  std::ostringstream o;
  char line[512];
  const json& m = g(r, "machine");
  o << "dfmon bench" << (r.value("quick", false) ? " (quick)" : "") << " — " << m.value("cpu", "?") << ", " << m.value("cores", 0)
    << " cores, OpenCV " << m.value("opencv", "?") << ", " << m.value("threads", 0) << " inference threads, load "
    << fmt(g(m, "loadavg_start").is_array() ? m["loadavg_start"][0] : json()) << " -> " << fmt(g(m, "loadavg_end").is_array() ? m["loadavg_end"][0] : json()) << "\n";
  if (g(m, "busy_processes_start").is_array() && !g(m, "busy_processes_start").empty()) {
    o << "  other busy processes at start:";
    for (const auto& p : g(m, "busy_processes_start")) {
      std::string cmd = p.value("cmd", "");
      if (cmd.size() > 60) cmd = cmd.substr(0, 57) + "...";
      o << "\n    " << fmt(g(p, "cpu_pct"), "%.0f") << "%  " << cmd;
    }
    o << "\n";
  }
  if (r.contains("crop")) {
    const json& c = g(r, "crop");
    o << "\n[crop] ms per face (median call / batch size); sgemm " << fmt(g(c, "sgemm_gflops"), "%.1f") << " GFLOP/s; "
      << c.value("crops", 0) << " crops: " << c.value("crop_source", "") << "\n";
    if (c.contains("error")) o << "  error: " << g(c, "error").get<std::string>() << "\n";
    std::snprintf(line, sizeof line, "  %-22s %5s %10s %9s %10s %9s %10s\n", "model", "batch", "opencv", "faces/s", "pytorch", "ocv/pt",
                  "flop-limit");
    o << line;
    if (g(c, "batches").is_array()) {
      for (const auto& row : g(c, "batches")) {
        std::vector<std::string> names;
        for (auto it = g(row, "opencv").begin(); it != g(row, "opencv").end(); ++it) {
          if (it.key().rfind("ensemble", 0) != 0) names.push_back(it.key());
        }
        for (const char* n : {"ensemble_sequential", "ensemble_opencv_layers"}) {
          if (g(row, "opencv").contains(n)) names.push_back(n);
        }
        names.push_back("ensemble");
        for (const auto& n : names) {
          const bool ens = n.rfind("ensemble", 0) == 0;  // both ensemble rows compare with PyTorch's ensemble
          const json& ov = g(g(row, "opencv"), n);
          const json& tv = g(g(row, "torch"), ens ? std::string("ensemble") : n);
          const double ratio = g(ov, "ms_per_face").is_number() && g(tv, "ms_per_face").is_number()
                                   ? g(ov, "ms_per_face").get<double>() / g(tv, "ms_per_face").get<double>()
                                   : kNaN;
          const json lim = ens ? g(row, "limit_ms_per_face") : g(g(g(c, "models"), n), "limit_ms_per_face");
          std::snprintf(line, sizeof line, "  %-22s %5d %10s %9s %10s %9s %10s\n", n.c_str(), g(row, "batch").get<int>(),
                        fmt(g(ov, "ms_per_face")).c_str(), fmt(g(ov, "faces_per_s"), "%.1f").c_str(),
                        fmt(g(tv, "ms_per_face")).c_str(), fmt(jnum(ratio, 3)).c_str(), fmt(lim).c_str());
          o << line;
        }
      }
    }
    o << "  headline (batch " << at(c, {"at_batch"}).dump() << "): ensemble " << fmt(g(c, "ensemble_ms_per_face")) << " ms/face, PyTorch "
      << fmt(g(c, "torch_ms_per_face")) << ", FLOP limit " << fmt(g(c, "limit_ms_per_face")) << "; ratio to PyTorch "
      << fmt(g(c, "ratio_to_torch")) << "x (target <= 1.0)\n";
    if (at(c, {"torch", "error"}).is_string()) o << "  pytorch: " << at(c, {"torch", "error"}).get<std::string>() << "\n";
  }
  if (r.contains("audit")) {
    const json& a = g(r, "audit");
    o << "\n[audit] 1280x720 25 fps clip, " << fmt(at(a, {"clip", "duration_s"}), "%.1f") << " s, sample "
      << fmt(at(a, {"settings", "sample_fps"}), "%.0f") << " fps\n";
    if (a.contains("error")) o << "  error: " << g(a, "error").get<std::string>() << "\n";
    std::snprintf(line, sizeof line, "  %-18s %9s %14s %8s %6s\n", "", "elapsed_s", "realtime_factor", "frames", "faces");
    o << line;
    std::snprintf(line, sizeof line, "  %-18s %9s %13sx %8s %6s\n", "dfmon (C++)", fmt(g(a, "elapsed_s")).c_str(),
                  fmt(g(a, "realtime_factor")).c_str(), fmt(g(a, "frames_analyzed"), "%.0f").c_str(), fmt(g(a, "faces_scored"), "%.0f").c_str());
    o << line;
    const json& p = at(a, {"python"});
    std::snprintf(line, sizeof line, "  %-18s %9s %13sx %8s %6s\n", "python reference", fmt(at(p, {"elapsed_s"})).c_str(),
                  fmt(g(a, "python_realtime_factor")).c_str(), fmt(at(p, {"frames_analyzed"}), "%.0f").c_str(),
                  fmt(at(p, {"faces_scored"}), "%.0f").c_str());
    o << line;
    const json& st = g(a, "stages");
    if (st.is_object()) {
      o << "  dfmon stages: decode alone " << fmt(g(st, "decode_s")) << " s for the clip, detector+landmarks "
        << fmt(g(st, "detect_ms_per_frame"), "%.1f") << " ms/frame, alignment " << fmt(g(st, "align_ms_per_face"), "%.1f") << " ms/face\n";
    }
    const json& pst = g(p, "stages_s");
    if (pst.is_object()) {
      o << "  python stages: decode " << fmt(g(pst, "decode")) << " s, detect " << fmt(g(pst, "detect")) << " s, crops+models "
        << fmt(g(pst, "crop_and_models")) << " s\n";
    }
    if (g(p, "detector").is_string()) o << "  python detector: " << g(p, "detector").get<std::string>() << "\n";
    if (g(p, "error").is_string()) o << "  python: " << g(p, "error").get<std::string>() << "\n";
    o << "  speed-up vs python " << fmt(g(a, "speedup_vs_python")) << "x (target >= 3); realtime factor target >= 8\n";
  }
  if (r.contains("live")) {
    const json& l = g(r, "live");
    o << "\n[live] dfmon watch on N RTSP 720p25 streams, " << fmt(g(l, "window_s"), "%.0f") << " s window per step\n";
    if (l.contains("error")) o << "  error: " << g(l, "error").get<std::string>() << "\n";
    std::snprintf(line, sizeof line, "  %7s %5s %11s %6s %7s %7s %7s %7s %9s %10s\n", "streams", "pass", "min face Hz", "drops", "p50 ms",
                  "p95 ms", "p99 ms", "RSS MB", "dfmon CPU", "server CPU");
    o << line;
    if (g(l, "steps").is_array()) {
      for (const auto& s : g(l, "steps")) {
        std::snprintf(line, sizeof line, "  %7d %5s %11s %6s %7s %7s %7s %7s %8s%% %9s%%\n", g(s, "streams").get<int>(),
                      s.value("pass", false) ? "yes" : "no", fmt(at(s, {"min_per_face_hz"})).c_str(), fmt(at(s, {"drops"}), "%.0f").c_str(),
                      fmt(at(s, {"latency_ms", "p50"}), "%.0f").c_str(), fmt(at(s, {"latency_ms", "p95"}), "%.0f").c_str(),
                      fmt(at(s, {"latency_ms", "p99"}), "%.0f").c_str(), fmt(at(s, {"rss_mb"}), "%.0f").c_str(),
                      fmt(at(s, {"dfmon_cpu_pct"}), "%.0f").c_str(), fmt(at(s, {"server_cpu_pct"}), "%.0f").c_str());
        o << line;
        if (g(s, "error").is_string()) o << "          error: " << g(s, "error").get<std::string>() << "\n";
      }
    }
    o << "  max streams at >= 5 Hz per face: " << at(l, {"max_streams_5hz"}).dump() << " (target 8); p95 at 1 stream "
      << fmt(at(l, {"latency_ms", "p95"}), "%.0f") << " ms (target <= 250, histogram estimate); RSS " << fmt(g(l, "rss_mb"), "%.0f")
      << " MB at " << at(l, {"rss_at_streams"}).dump() << " streams (target <= 1024 at 8)\n";
  }
  o << "\nwall time " << fmt(g(r, "wall_s"), "%.0f") << " s\n";
  return o.str();
}

}  // namespace dfm::bench
