#!/usr/bin/python3
"""Scores training checkpoints on labelled videos' face crops, without exporting them first.

    /usr/bin/python3 training/eval_checkpoints.py --videos LABELLED_DIR --crops /tmp/crops \
        runs/r18/best.pt runs/vit/best.pt

With --videos, each video under LABELLED_DIR is cut into aligned crops with `dfmon dataset extract`
(the product's face pipeline; --fps/--max-per-video/--margin as given) into CROPS/<video name>/, once.
Without it, CROPS must already hold one folder of crops per video. A video is fake when its name contains
"fake" (any case), otherwise real, as in scripts/eval-real-fakes. Prints per checkpoint and for the mean
of all of them: video-level ROC AUC (mean P(fake) per video), frame-level AUC, and the same-footage pair
test: for every fake whose name with "fake" replaced by "real" names a real video, whether the fake
scores above its own source. Each video AUC comes with a 95% interval from a stratified bootstrap over the
videos; --compare REF_JSON (an earlier --json file) adds each model's AUC difference to every model in it,
from the same resamples for both (paired), which is what tells a real gain from the noise of a few dozen
videos. --detail-probe adds how each checkpoint's P(fake) of the real faces moves
when only their interior is sharpened, blurred or tinted (what the network treats as a sign of a fake).
--detail-fakes DATA adds, per kind of change, the AUC of DATA's val real crops (dfmon dataset extract's
layout with landmarks.jsonl) against their own detail-only fakes (train.py --detail-fakes): whether a
network can tell a face's own fine detail from a changed one.

It is a quick check for choosing among checkpoints (seconds per checkpoint, 1 thread); the figures a
release reports come from the exported files through `scripts/eval-real-fakes` (every frame, dfmon's
tracker and scoring). Never train on the labelled material: this script only measures.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import common  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from common import bootstrap_auc, interval, roc_auc, set_threads
from dataset import DETAIL_KINDS, IMG_EXTS, detail_fake, hull_mask, load_landmarks, to_tensor, unsharp
from models import FULL_RESOLUTION, build_model, load_weights
import onnx_import

CROP = 224  # the product's crop size
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov", ".avi")


def extract(videos_dir, crops_dir, dfmon, fps, max_per_video, margin):
    """One crops folder per video, made by dfmon's face pipeline; existing folders are kept."""
    for root, _, files in sorted(os.walk(videos_dir)):
        for f in sorted(files):
            if not f.lower().endswith(VIDEO_EXTS):
                continue
            out = os.path.join(crops_dir, os.path.splitext(f)[0])
            if os.path.isdir(out):
                continue
            cmd = [dfmon, "dataset", "extract", os.path.join(root, f), "--out", out, "--val-fraction", "0",
                   "--fps", str(fps), "--max-per-source", str(max_per_video), "--margin", str(margin)]
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                print(f"{f}: dfmon dataset extract failed ({r.returncode}): {r.stderr.strip()[-300:]}", file=sys.stderr)


def as_batch(bgrs):
    """The NCHW tensor a network reads for a list of BGR crops."""
    return torch.stack([to_tensor(cv2.cvtColor(b, cv2.COLOR_BGR2RGB)) for b in bgrs])


def load_crops(crops_dir):
    """{video name: NCHW tensor of its crops at 224 px}, videos without a face left out."""
    videos = {}
    for name in sorted(os.listdir(crops_dir)):
        files = []
        for root, _, fs in os.walk(os.path.join(crops_dir, name)):
            files += [os.path.join(root, f) for f in fs if f.lower().endswith(IMG_EXTS)]
        bgrs = []
        for path in sorted(files):
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is None:
                print(f"{path}: unreadable, skipped", file=sys.stderr)
                continue
            if bgr.shape[:2] != (CROP, CROP):
                bgr = cv2.resize(bgr, (CROP, CROP), interpolation=cv2.INTER_AREA if bgr.shape[0] > CROP else cv2.INTER_LINEAR)
            bgrs.append(bgr)
        if bgrs:
            videos[name] = as_batch(bgrs)
    return videos


def load_scorer(checkpoint):
    """A function mapping an NCHW batch of 224 px crops to P(fake) per crop, for one train.py checkpoint
    (or export.py ONNX file).
    A model trained below 224 px sees the crop area-resized to its size, as the exported file's fixed
    average pool does."""
    ck = onnx_import.load_checkpoint(checkpoint)  # e.g. the bundled models/*.onnx, read back into PyTorch
    arch, size = ck["arch"], ck.get("img_size", CROP)
    model = load_weights(build_model(arch, img_size=size), ck["model"]).eval()
    resize = arch not in FULL_RESOLUTION and size != CROP

    def p_fake(x):
        with torch.no_grad():
            if resize:
                x = F.interpolate(x, size=(size, size), mode="area")
            return torch.softmax(model(x), 1)[:, 1].numpy()
    return p_fake


# Changes made to the face interior only (soft landmark-hull mask) of real crops.
PROBES = {
    "sharpened": lambda img: unsharp(img, 1.2, 1.5),
    "blurred": lambda img: cv2.GaussianBlur(img, (0, 0), 1.0),
    "tinted": lambda img: np.clip(img.astype(np.int16) + np.array([0, 0, 10], np.int16), 0, 255).astype(np.uint8),
}


def load_probe_faces(crops_dir):
    """[(crop, soft face mask)] of the real videos' crops that have landmarks (dfmon's landmarks.jsonl)."""
    faces = []
    for name in sorted(os.listdir(crops_dir)):
        lj = os.path.join(crops_dir, name, "landmarks.jsonl")
        if is_fake(name) or not os.path.exists(lj):
            continue
        for line in open(lj):
            rec = json.loads(line)
            img = cv2.imread(os.path.join(crops_dir, name, rec["file"]), cv2.IMREAD_COLOR)
            if img is None or img.shape[:2] != (CROP, CROP):
                continue
            pts = np.asarray(rec["landmarks"], np.float32).reshape(-1, 2)
            mask = hull_mask(pts, (CROP, CROP))
            faces.append((img, cv2.GaussianBlur(mask, (15, 15), 0)[..., None]))
    return faces


def detail_probe(p_fake, faces):
    """How one model's P(fake) of real faces moves when only the face interior is sharpened, blurred or
    tinted: {probe: (mean P(fake) before, after, share of faces whose P(fake) rose)}. A detector of
    blending should find every such change more fake; one that learned "sharp = real" drops on sharpening."""
    base = p_fake(as_batch([f for f, _ in faces]))
    out = {}
    for name, op in PROBES.items():
        p = p_fake(as_batch([(f * (1 - m) + op(f).astype(np.float32) * m).astype(np.uint8) for f, m in faces]))
        out[name] = (float(base.mean()), float(p.mean()), float((p > base).mean()))
    return out


def load_detail_pairs(root, count):
    """(reals, {kind: their detail-only fakes}) for up to COUNT val real crops of ROOT spread evenly over
    its sorted file names, each fake seeded by the crop's index (the same pairs for every checkpoint)."""
    landmarks = load_landmarks(root)
    real_dir = os.path.join(root, "val", "real")
    files = sorted(f for f in os.listdir(real_dir) if f in landmarks) if os.path.isdir(real_dir) else []
    files = files[::max(1, len(files) // count)][:count]
    reals = []
    for f in files:
        img = cv2.imread(os.path.join(real_dir, f), cv2.IMREAD_COLOR)
        if img is None:
            raise IOError(f"cannot read {os.path.join(real_dir, f)}")
        pts = np.asarray(landmarks[f], np.float32).reshape(-1, 2)
        if img.shape[:2] != (CROP, CROP):
            pts *= np.float32([CROP / img.shape[1], CROP / img.shape[0]])
            img = cv2.resize(img, (CROP, CROP), interpolation=cv2.INTER_AREA if img.shape[0] > CROP else cv2.INTER_LINEAR)
        reals.append((img, pts))
    fakes = {kind: [detail_fake(r, lm, np.random.default_rng(i), kind) for i, (r, lm) in enumerate(reals)]
             for kind in DETAIL_KINDS}
    return [r for r, _ in reals], fakes


def detail_fake_aucs(p_fake, reals, fakes):
    """{kind: AUC of the reals against their own detail-only fakes} for one model."""
    r = p_fake(as_batch(reals))
    out = {}
    for kind, kind_fakes in fakes.items():
        f = p_fake(as_batch(kind_fakes))
        out[kind] = roc_auc(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[r, f])
    return out


def is_fake(name):
    return re.search("fake", name, re.IGNORECASE) is not None


def summarise(per_video):
    names = list(per_video)
    y = [int(is_fake(n)) for n in names]
    video = [float(per_video[n].mean()) for n in names]
    frame_y = np.concatenate([[label] * len(per_video[n]) for label, n in zip(y, names)])
    frame_s = np.concatenate([per_video[n] for n in names])
    fake_means, real_means = [], []
    for n in names:
        if is_fake(n):
            real = re.sub("fake", lambda m: "REAL" if m.group(0).isupper() else "real", n, flags=re.IGNORECASE)
            if real in per_video:
                fake_means.append(per_video[n].mean())
                real_means.append(per_video[real].mean())
    wins = int(sum(f > r for f, r in zip(fake_means, real_means)))
    boot = bootstrap_auc(y, [video])
    return {"videos": len(names), "fake_videos": sum(y), "video_auc": roc_auc(y, video),
            "video_auc_95": None if boot is None else interval(boot[:, 0]), "faces": int(frame_y.size),
            "frame_auc": roc_auc(frame_y, frame_s), "pairs": len(fake_means), "pairs_fake_above_real": wins,
            "pair_rank_corr": rank_corr(fake_means, real_means),
            "per_video": {n: round(v, 4) for n, v in zip(names, video)}}  # mean P(fake): which fakes it catches


def load_reference(path):
    """{model name: {video: mean P(fake)}} from an earlier --json file; read before scoring, so a wrong path
    fails at once."""
    try:
        with open(path) as f:
            return {k: dict(v["per_video"]) for k, v in json.load(f).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SystemExit(f"--compare {path}: not a JSON file written by --json ({e})")


def compare(results, refs, ref_path):
    """Paired bootstrap of each result's video AUC against every reference model scored on the same videos:
    {name: {ref name: {"diff", "diff_95", "share_not_above"}}}. The share of resamples where the difference
    is <= 0 reads like a one-sided p-value."""
    out = {}
    for name, r in results.items():
        mine = r["per_video"]
        for ref_name, theirs in refs.items():
            if set(theirs) != set(mine):
                differ = sorted(set(theirs) ^ set(mine))
                raise SystemExit(f"--compare {ref_path}: '{ref_name}' was scored on other videos "
                                 f"({len(differ)} differ, e.g. {differ[0]}); compare runs on the same --crops")
        names = sorted(mine)
        y = [int(is_fake(n)) for n in names]
        # One set of resamples for this model and every reference: column 0 is this model.
        sets = [[mine[n] for n in names]] + [[theirs[n] for n in names] for theirs in refs.values()]
        boot = bootstrap_auc(y, sets)
        if boot is None:
            continue
        for k, ref_name in enumerate(refs, start=1):
            d = boot[:, 0] - boot[:, k]
            diff, (lo, hi), not_above = roc_auc(y, sets[0]) - roc_auc(y, sets[k]), interval(d), float((d <= 0).mean())
            out.setdefault(name, {})[ref_name] = {"diff": diff, "diff_95": [lo, hi], "share_not_above": not_above}
            print(f"{name} vs {ref_name}: video AUC {diff:+.3f} (95% interval {lo:+.3f} to {hi:+.3f}; "
                  f"not above it in {100 * not_above:.0f}% of resamples)", flush=True)
    return out


def rank_corr(a, b):
    """Spearman correlation (no ties expected) of fakes' scores with their own sources' across the pairs:
    near 1 means the model scores the footage and the person, not the swap. None below 3 pairs."""
    if len(a) < 3:
        return None
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="train.py checkpoints (best.pt / last.pt)")
    p.add_argument("--crops", required=True, help="one folder of face crops per video (made with --videos)")
    p.add_argument("--videos", help="labelled videos to cut into --crops first (with dfmon dataset extract)")
    p.add_argument("--dfmon", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "bin", "dfmon"))
    p.add_argument("--fps", type=float, default=3.0)
    p.add_argument("--max-per-video", type=int, default=30)
    p.add_argument("--margin", type=float, default=0.25, help="crop margin; must be the one the models were trained with")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--detail-probe", action="store_true",
                   help="also show how P(fake) of the real videos' faces moves when only the face interior is "
                        "sharpened, blurred or tinted (needs the crops' landmarks.jsonl)")
    p.add_argument("--detail-fakes", metavar="DATA",
                   help="also score DATA's val real crops against their own detail-only fakes, one kind of change "
                        "at a time (needs DATA/landmarks.jsonl)")
    p.add_argument("--detail-fakes-count", type=int, default=300, help="real crops for --detail-fakes")
    p.add_argument("--compare", metavar="REF_JSON",
                   help="an earlier --json file on the same crops: print each model's video-AUC difference to every "
                        "model in it, with a 95%% interval from a paired bootstrap over the videos")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    if args.detail_fakes_count < 2:
        p.error(f"--detail-fakes-count {args.detail_fakes_count}: needs at least 2")
    set_threads(args.threads)
    detail_reals = None
    if args.detail_fakes:
        try:
            detail_reals, detail_fakes = load_detail_pairs(args.detail_fakes, args.detail_fakes_count)
        except (OSError, ValueError, KeyError) as e:
            raise SystemExit(f"--detail-fakes {args.detail_fakes}: {e}")
        if not detail_reals:
            raise SystemExit(f"--detail-fakes {args.detail_fakes}: no val real crops with landmarks")
    refs = load_reference(args.compare) if args.compare else None
    if args.videos:
        os.makedirs(args.crops, exist_ok=True)
        extract(args.videos, args.crops, args.dfmon, args.fps, args.max_per_video, args.margin)
    if not os.path.isdir(args.crops):
        p.error(f"--crops {args.crops}: not a directory")
    videos = load_crops(args.crops)
    if not videos:
        p.error(f"--crops {args.crops}: no face crops")
    scorers = {ck: load_scorer(ck) for ck in args.checkpoints}
    scores = {ck: {v: p_fake(x) for v, x in videos.items()} for ck, p_fake in scorers.items()}
    if len(scores) > 1:
        scores["ensemble (mean)"] = {v: np.mean([s[v] for s in list(scores.values())], axis=0) for v in videos}
    results = {}
    for name, per_video in scores.items():
        r = results[name] = summarise(per_video)
        fmt = lambda a: "n/a" if a is None else f"{a:.3f}"  # noqa: E731
        ci = r["video_auc_95"]
        ci = "" if ci is None else f" [95% {ci[0]:.2f}-{ci[1]:.2f}]"
        print(f"{name}: video AUC {fmt(r['video_auc'])}{ci} ({r['videos']} videos, {r['fake_videos']} fake) | "
              f"frame AUC {fmt(r['frame_auc'])} ({r['faces']} faces) | "
              f"fake above its own real in {r['pairs_fake_above_real']} of {r['pairs']} pairs "
              f"(rank correlation with the real's score {fmt(r['pair_rank_corr'])})", flush=True)
    if args.detail_probe:
        faces = load_probe_faces(args.crops)
        if not faces:
            p.error(f"--detail-probe: no real crops with landmarks under {args.crops}")
        for ck, p_fake in scorers.items():
            probe = results[ck]["detail_probe"] = detail_probe(p_fake, faces)
            print(f"{ck}: P(fake) of {len(faces)} real faces " + " | ".join(
                f"interior {k} {a:.3f} -> {b:.3f} (rose for {100 * up:.0f}%)" for k, (a, b, up) in probe.items()),
                flush=True)
    if detail_reals:
        for ck, p_fake in scorers.items():
            aucs = results[ck]["detail_fakes"] = detail_fake_aucs(p_fake, detail_reals, detail_fakes)
            print(f"{ck}: {len(detail_reals)} real crops against their own detail-only fakes, AUC " + " | ".join(
                f"{k} {a:.3f}" for k, a in aucs.items()), flush=True)
    if args.compare:
        for name, c in compare(results, refs, args.compare).items():
            results[name]["compare"] = c
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
