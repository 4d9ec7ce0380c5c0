#!/usr/bin/python3
"""Python reference audit for `dfmon bench` (audit group): the same work as `dfmon audit` on one clip,
written the way a Python user would, so the C++ pipeline's real-time factor has something to stand next
to.

  /usr/bin/python3 bench/reference/audit_reference.py --models models --names resnet18,vit \
      --video clip.mp4 --sample-fps 5 --json OUT/python_audit.json [--boxes dfmon_boxes.json]

Per frame: cv2.VideoCapture decodes every frame (grab); frames are sampled by timestamp at --sample-fps
with the C++ decoder's rule (keep when pts >= next_due - 1 ms; next_due += step, re-anchored after
gaps); a kept frame is retrieved (BGR), faces are detected on a copy downscaled to --max-width, each
face box is widened by --margin, cropped and resized to the model input, all crops of the frame go
through every PyTorch model as one batch (softmax P(fake), ensemble = mean), faces are tracked by
greedy IoU (>= 0.3, tracks closed after 1 s unseen) and each track's score is smoothed with an EMA
(--alpha). Model loading is not timed (the C++ side does not time it either).

Face detector: OpenCV's Haar cascade (haarcascade_frontalface_default.xml from Debian's opencv-data,
or --cascade FILE). When no cascade is installed, --boxes (the face boxes dfmon's own audit found,
{"frames": [{"t": s, "boxes": [[x, y, w, h], ...]}]}) stands in for detection: the report then says
so, and the Python side pays nothing for detection, which flatters it.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402  (imports training/common.py before torch)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades",
                "/usr/local/share/opencv4/haarcascades")


def find_cascade(explicit=None):
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    data = getattr(cv2, "data", None)
    dirs = ([data.haarcascades] if data is not None else []) + list(CASCADE_DIRS)
    for d in dirs:
        p = os.path.join(d, "haarcascade_frontalface_default.xml")
        if os.path.isfile(p):
            return p
    return None


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


class Tracker:
    def __init__(self, min_iou=0.3, max_gap_s=1.0):
        self.min_iou, self.max_gap_s = min_iou, max_gap_s
        self.tracks = {}  # id -> (last box, last t)
        self.next_id = 1

    def update(self, t, boxes):
        for tid in [k for k, (_, lt) in self.tracks.items() if t - lt > self.max_gap_s]:
            del self.tracks[tid]
        pairs = sorted(((iou(b, tb), i, tid) for i, b in enumerate(boxes) for tid, (tb, _) in self.tracks.items()),
                       reverse=True)
        ids = [None] * len(boxes)
        used = set()
        for v, i, tid in pairs:
            if v < self.min_iou or v <= 0:
                break
            if ids[i] is None and tid not in used:
                ids[i] = tid
                used.add(tid)
        for i, b in enumerate(boxes):
            if ids[i] is None:
                ids[i] = self.next_id
                self.next_id += 1
            self.tracks[ids[i]] = (b, t)
        return ids


def crop_face(frame, box, margin, size):
    x, y, w, h = box
    cx, cy, s = x + w / 2.0, y + h / 2.0, max(w, h) * (1.0 + 2 * margin)
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    x1, y1 = x0 + int(round(s)), y0 + int(round(s))
    H, W = frame.shape[:2]
    pad = max(0, -x0, -y0, x1 - W, y1 - H)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True)
    p.add_argument("--names", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--sample-fps", type=float, default=5.0)
    p.add_argument("--max-width", type=int, default=640, help="detection on frames downscaled to this width")
    p.add_argument("--min-face", type=int, default=40)
    p.add_argument("--margin", type=float, default=0.25)
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cascade", help="Haar cascade XML (default: opencv-data's frontal face cascade)")
    p.add_argument("--boxes", help="JSON of dfmon's face boxes, used only when no cascade is found")
    p.add_argument("--checkpoint", action="append", default=[], help="NAME=PATH")
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)

    tm.import_training().set_threads(args.threads)
    out = {"schema": "dfmon.bench.python_audit/1", "video": args.video, "sample_fps": args.sample_fps,
           "threads": torch.get_num_threads(), "ok": False}
    checkpoints = dict(c.split("=", 1) for c in args.checkpoint)
    models = []
    try:
        for name in [n for n in args.names.split(",") if n]:
            card, onnx_path = tm.read_card(args.models, name)
            module, how = tm.load_reference(onnx_path, card, checkpoints.get(name))
            models.append((name, module, card, how))
    except Exception as e:  # noqa: BLE001
        out["error"] = f"loading models: {type(e).__name__}: {e}"
        return tm.write_result(args.json, out)

    cascade_path = find_cascade(args.cascade)
    cascade = cv2.CascadeClassifier(cascade_path) if cascade_path else None
    oracle = None
    if cascade is not None and not cascade.empty():
        out["detector"] = f"cv2.CascadeClassifier({os.path.basename(cascade_path)})"
    elif args.boxes:
        with open(args.boxes) as f:
            oracle = [(fr["t"], [tuple(b) for b in fr["boxes"]]) for fr in json.load(f)["frames"]]
        out["detector"] = "none installed (no opencv-data Haar cascade): dfmon's boxes used, detection not timed"
    else:
        out["error"] = "no face detector: no Haar cascade installed (Debian opencv-data) and no --boxes"
        return tm.write_result(args.json, out)

    def boxes_at(t):
        best = min(oracle, key=lambda fb: abs(fb[0] - t)) if oracle else None
        return best[1] if best is not None and abs(best[0] - t) < 0.05 else []

    size = int(models[0][2]["input"]["width"])
    # Warm-up, as EnsembleRunner::create does before the C++ audit is timed: the first calls allocate
    # and pick kernels.
    with torch.inference_mode():
        dummy = [np.zeros((size, size, 3), np.uint8)]
        for _ in range(2):
            for _, m, card, _ in models:
                m(tm.preprocess(dummy, card))
    tracker = Tracker()
    smoothed = {}
    frames = analysed = faces = 0
    t_decode = t_detect = t_infer = 0.0
    t0 = time.perf_counter()
    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        out["error"] = f"cv2.VideoCapture cannot open {args.video}"
        return tm.write_result(args.json, out)
    step = 1.0 / args.sample_fps
    next_due = None
    last_t = 0.0
    with torch.inference_mode():
        while True:
            ta = time.perf_counter()
            if not cap.grab():
                t_decode += time.perf_counter() - ta
                break
            t_decode += time.perf_counter() - ta
            frames += 1
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            last_t = t
            if next_due is not None and t < next_due - 0.001:
                continue
            next_due = t + step if next_due is None else next_due + step
            if next_due <= t:
                next_due = t + step
            ta = time.perf_counter()
            ok, frame = cap.retrieve()
            t_decode += time.perf_counter() - ta
            if not ok:
                break
            analysed += 1
            ta = time.perf_counter()
            if oracle is not None:
                boxes = boxes_at(t)
            else:
                s = min(1.0, args.max_width / frame.shape[1]) if args.max_width else 1.0
                small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else frame
                gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
                mf = max(1, int(args.min_face * s))
                found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(mf, mf))
                boxes = [tuple(int(round(v / s)) for v in b) for b in found]
            t_detect += time.perf_counter() - ta
            if not boxes:
                continue
            ta = time.perf_counter()
            crops = [crop_face(frame, b, args.margin, size) for b in boxes]
            per_model = [tm.p_fake(m(tm.preprocess(crops, card)), card).numpy() for _, m, card, _ in models]
            ens = np.mean(per_model, axis=0)
            t_infer += time.perf_counter() - ta
            for tid, score in zip(tracker.update(t, boxes), ens):
                prev = smoothed.get(tid)
                smoothed[tid] = float(score) if prev is None else args.alpha * float(score) + (1 - args.alpha) * prev
            faces += len(boxes)
    elapsed = time.perf_counter() - t0
    fps = cap.get(cv2.CAP_PROP_FPS)
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    duration = n / fps if fps > 0 and n > 0 else last_t
    out.update(ok=True, elapsed_s=round(elapsed, 3), duration_s=round(duration, 3), frames_decoded=frames,
               frames_analyzed=analysed, faces_scored=faces, tracks=len(smoothed),
               realtime_factor=round(duration / elapsed, 3) if elapsed > 0 else None,
               stages_s={"decode": round(t_decode, 3), "detect": round(t_detect, 3),
                         "crop_and_models": round(t_infer, 3)},
               models=[{"name": n, "source": how} for n, _, _, how in models])
    return tm.write_result(args.json, out)


if __name__ == "__main__":
    sys.exit(main())
