#!/usr/bin/python3
"""PyTorch eager reference for `dfmon bench` (crop group): per-crop latency of each model and of the
ensemble at the given batch sizes, on the same weights and the same crops as the C++ side.

  /usr/bin/python3 bench/reference/crop_reference.py --models models --names resnet18,vit \
      --crops OUT/crops --batches 1,4,8 --threads 2 --min-time 2 --json OUT/torch_crop.json

Per model: rebuilds the PyTorch module from the ONNX weights (or --checkpoint NAME=PATH), checks its
softmax against cv2.dnn on the crops (max |diff| <= --tol, else that model is not timed), counts its
GFLOPs from the ONNX graph, then times preprocessing (the C++ make_blob's steps, in numpy/cv2) +
forward + softmax per call: warm-up, then repeated calls for at least --min-time seconds; the median
call is reported. The ensemble call preprocesses and runs every model, as EnsembleRunner::score does.
"""
import argparse
import glob
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402  (imports training/common.py before torch)

import cv2  # noqa: E402
import torch  # noqa: E402


def time_call(fn, min_time, min_reps=3, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 1000:
            break
    return statistics.median(times) * 1000.0, len(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="directory with NAME.onnx + NAME.json")
    p.add_argument("--names", required=True, help="comma-separated model names (ensemble order)")
    p.add_argument("--crops", required=True, help="directory of aligned BGR face crops (*.png)")
    p.add_argument("--batches", default="1,4,8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timed calls per measurement")
    p.add_argument("--tol", type=float, default=1e-4, help="max |softmax diff| vs cv2.dnn to accept a model")
    p.add_argument("--checkpoint", action="append", default=[], help="NAME=PATH: build NAME from a checkpoint")
    p.add_argument("--json", required=True, help="output file")
    args = p.parse_args(argv)

    tm.import_training().set_threads(args.threads)
    names = [n for n in args.names.split(",") if n]
    checkpoints = dict(c.split("=", 1) for c in args.checkpoint)
    files = sorted(glob.glob(os.path.join(args.crops, "*.png")))
    crops = [cv2.imread(f, cv2.IMREAD_COLOR) for f in files]
    crops = [c for c in crops if c is not None]
    out = {"schema": "dfmon.bench.torch_crop/1", "torch": torch.__version__.split("+")[0], "opencv": cv2.__version__,
           "threads": torch.get_num_threads(), "crops": len(crops), "models": {}, "batches": [], "ok": False}
    if not crops:
        out["error"] = f"no crops in {args.crops}"
        return tm.write_result(args.json, out)
    batches = [int(b) for b in args.batches.split(",") if b]
    while len(crops) < max(batches):
        crops = crops + crops

    loaded = {}
    for name in names:
        info = {}
        out["models"][name] = info
        try:
            card, onnx_path = tm.read_card(args.models, name)
            flops, unknown = tm.count_flops(onnx_path)
            info["gflops"] = round(flops / 1e9, 4)
            info["flop_nodes_unknown"] = unknown
            module, how = tm.load_reference(onnx_path, card, checkpoints.get(name))
            info["source"] = how
            diff = tm.verify_against_opencv(module, onnx_path, card, crops[:8])
            info["parity_max_abs_diff"] = float(f"{diff:.3g}")
            if not diff <= args.tol:
                info["error"] = f"PyTorch and cv2.dnn differ by {diff:.3g} > {args.tol:g}; not timed"
                continue
            loaded[name] = (module, card)
        except Exception as e:  # noqa: BLE001  (reported in the JSON, the bench goes on)
            info["error"] = f"{type(e).__name__}: {e}"

    def run(which, batch):
        with torch.inference_mode():
            for name in which:
                module, card = loaded[name]
                tm.p_fake(module(tm.preprocess(batch, card)), card).numpy()

    for b in batches:
        batch = crops[:b]
        row = {"batch": b, "models": {}}
        for name in loaded:
            ms, reps = time_call(lambda: run([name], batch), args.min_time)
            row["models"][name] = {"ms_per_batch": round(ms, 3), "ms_per_face": round(ms / b, 3), "reps": reps}
        if len(loaded) == len(names):
            ms, reps = time_call(lambda: run(names, batch), args.min_time)
            row["ensemble"] = {"ms_per_batch": round(ms, 3), "ms_per_face": round(ms / b, 3), "reps": reps}
        out["batches"].append(row)
    out["ok"] = len(loaded) == len(names)
    if not out["ok"]:
        out["error"] = "; ".join(f"{n}: {i['error']}" for n, i in out["models"].items() if "error" in i)
    return tm.write_result(args.json, out)


if __name__ == "__main__":
    sys.exit(main())
