#!/usr/bin/python3
"""Face-aware pretraining: a ResNet-18 learns to place the 68 dlib landmarks on real face crops, before
it learns real vs fake (`train.py --init RUN/pretrained.pt`).

    nice /usr/bin/python3 training/pretrain.py --data data/ds --out runs/r18_lm --minutes 30

Why: trained from random weights on ~10k crops, the detectors learned who and where (the person, the
footage) rather than the manipulation (shared/docs/model-training-notes.md). Pretrained backbones are what
detectors elsewhere start from; none can be downloaded here. Landmarks are a label every crop already has
(`dfmon dataset extract` writes DATA/landmarks.jsonl): to place the eye corners, lip contour and jaw to a
pixel the network needs the shape of each facial part, and nothing about whose face it is. Each crop is
rotated, scaled, shifted and mirrored at random (the landmarks with it), then colour-jittered and degraded
as in train.py, so the aligned crop's fixed layout cannot be memorised.

Writes RUN/pretrained.pt, a train.py checkpoint (arch resnet18, 112 px) whose head is a fresh 2-class
layer, and RUN/metrics.jsonl: per evaluation the val error as a share of the inter-ocular distance (NME).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (first: sets the OpenMP wait policy before torch loads)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from common import seed_everything, set_threads  # noqa: E402
from dataset import augment, list_split, load_landmarks, to_tensor  # noqa: E402
from models import build_model  # noqa: E402
from train import lr_at, save_checkpoint  # noqa: E402

CROP = 224
N_POINTS = 68
# dlib / iBUG 68-point order mirrored left-right: jaw, brows, nose, eyes, outer and inner lips.
MIRROR = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
                  + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
                  + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def random_view(bgr, points, rng, rotate=20.0, scale=0.15, shift=0.08):
    """The crop and its (68, 2) landmarks under one random similarity transform and mirror."""
    h, w = bgr.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-rotate, rotate), rng.uniform(1 - scale, 1 + scale))
    m[:, 2] += rng.uniform(-shift, shift, 2) * (w, h)
    if rng.random() < 0.5:  # mirror: x -> w - 1 - x, then left and right points trade places
        m = np.array([[-1.0, 0.0, w - 1], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
        points = points[MIRROR]
    out = cv2.warpAffine(bgr, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out, points @ m[:, :2].T + m[:, 2]


class LandmarkCrops(torch.utils.data.Dataset):
    def __init__(self, root, split, size, train, seed=0):
        marks = load_landmarks(root)
        self.items = [(p, np.asarray(marks[os.path.basename(p)], np.float32).reshape(N_POINTS, 2))
                      for p, label in list_split(root, split) if label == 0 and os.path.basename(p) in marks]
        if not self.items:
            raise FileNotFoundError(f"no real crops with landmarks under {os.path.join(root, split)}/real "
                                    f"(landmarks.jsonl is written by dfmon dataset extract)")
        self.size, self.train, self.seed = size, train, seed

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, pts = self.items[i]
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise IOError(f"cannot read {path}")
        if bgr.shape[:2] != (CROP, CROP):
            pts = pts * (CROP / bgr.shape[1], CROP / bgr.shape[0])
            bgr = cv2.resize(bgr, (CROP, CROP), interpolation=cv2.INTER_AREA)
        # Training views from torch's RNG (reproducible under the seed); val views fixed per item.
        seed = int(torch.randint(0, 2 ** 31 - 1, (1,))) if self.train else self.seed * 1_000_003 + i
        rng = np.random.default_rng(seed)
        bgr, pts = random_view(bgr, pts, rng)
        if self.train:
            bgr = augment(bgr, rng, "full", flip=False)  # mirroring is done above, with the points
        small = cv2.resize(bgr, (self.size, self.size), interpolation=cv2.INTER_AREA)
        target = torch.from_numpy((pts / CROP * 2.0 - 1.0).astype(np.float32).reshape(-1))
        return to_tensor(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)), target


def nme(pred, target):
    """Mean point error / inter-ocular distance (outer eye corners 36 and 45), per crop."""
    p, t = pred.view(-1, N_POINTS, 2), target.view(-1, N_POINTS, 2)
    iod = (t[:, 36] - t[:, 45]).norm(dim=1).clamp_min(1e-6)
    return (p - t).norm(dim=2).mean(dim=1) / iod


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    errs = [nme(model(x), y) for x, y in loader]
    model.train()
    return float(torch.cat(errs).mean()) if errs else float("nan")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset from dfmon dataset extract (DIR/{train,val}/real, "
                                                 "DIR/landmarks.jsonl)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--arch", default="resnet18", choices=("resnet18",))
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=0, help="optimiser steps (0: until --minutes)")
    p.add_argument("--minutes", type=float, default=30.0, help="wall-time budget when --steps is 0")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--val-max", type=int, default=600, help="val crops per evaluation at most")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps <= 0 and args.minutes <= 0:
        p.error("give --steps or --minutes")
    set_threads(args.threads)
    seed_everything(args.seed)
    os.makedirs(args.out, exist_ok=True)

    train_ds = LandmarkCrops(args.data, "train", args.size, train=True, seed=args.seed)
    val_ds = LandmarkCrops(args.data, "val", args.size, train=False, seed=args.seed)
    if len(val_ds) > args.val_max:
        val_ds.items = [val_ds.items[i] for i in np.linspace(0, len(val_ds) - 1, args.val_max).round().astype(int)]
    gen = torch.Generator().manual_seed(args.seed)
    train_dl = torch.utils.data.DataLoader(train_ds, batch_size=args.batch, shuffle=True, drop_last=True,
                                           generator=gen)
    val_dl = torch.utils.data.DataLoader(val_ds, batch_size=64)

    model = build_model(args.arch)
    model.fc = nn.Linear(model.fc.in_features, N_POINTS * 2)
    cls_head = nn.Linear(model.fc.in_features, 2)  # the real/fake head train.py fine-tunes, saved with it
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    log = open(os.path.join(args.out, "metrics.jsonl"), "a")
    print(f"{len(train_ds)} train / {len(val_ds)} val crops with landmarks; val NME before training "
          f"{evaluate(model, val_dl):.3f}", flush=True)

    t0, step, seen, loss_sum, n_loss = time.time(), 0, 0, 0.0, 0
    budget = args.minutes * 60.0
    # With a time budget the schedule's length is estimated from the first 20 steps' pace.
    total = args.steps or 10 ** 9
    done = False
    while not done:
        for x, y in train_dl:
            if step == 20 and not args.steps:
                total = max(40, int(budget / ((time.time() - t0) / 20)))
            lr = lr_at(step, total, min(200, total // 10), args.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = nn.functional.smooth_l1_loss(model(x), y, beta=0.02)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step, seen = step + 1, seen + len(x)
            loss_sum, n_loss = loss_sum + loss.item(), n_loss + 1
            elapsed = time.time() - t0
            done = step >= total or (not args.steps and elapsed >= budget)
            if step % args.eval_every == 0 or done:
                row = {"step": step, "images_seen": seen, "train_loss": loss_sum / n_loss,
                       "val_nme": evaluate(model, val_dl), "lr": lr, "wall_min": elapsed / 60}
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(f"step {step}/{total} loss {row['train_loss']:.4f} val NME {row['val_nme']:.3f} "
                      f"{seen / elapsed:.1f} img/s {elapsed / 60:.1f} min", flush=True)
                loss_sum, n_loss = 0.0, 0
                head, model.fc = model.fc, cls_head
                save_checkpoint(os.path.join(args.out, "pretrained.pt"), {
                    "arch": args.arch, "img_size": args.size, "model": model.state_dict(),
                    "training": {"recipe": f"landmark pretraining ({N_POINTS} points, smooth L1), "
                                           f"{step} steps of {args.batch} at {args.size} px",
                                 "data": os.path.abspath(args.data), "images_seen": seen,
                                 "val_nme": row["val_nme"], "seed": args.seed}})
                model.fc = head
            if done:
                break
    print(f"wrote {os.path.join(args.out, 'pretrained.pt')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
