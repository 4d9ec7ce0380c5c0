"""Fakes rendered by a learned generator and merged the way face-swap tools merge them.

Self-blends paste a shifted copy of a photo, so their face carries photo texture and, nearly always,
less detail than the frame around it. Swap tools (DeepFaceLab, DeepFaceLive, faceswap) instead render
the face with a decoder at a low resolution, scale it up, match its colour to the target, and blend it
in under an eroded, blurred mask, often sharpening it first. This script reproduces that pipeline with
a small autoencoder trained here on our real crops (no pretrained weights):

  train-ae  learn to reconstruct the aligned face region of DATA/train/real (L1 loss) at 48-128 px,
            with pixel-shuffle, transposed-conv or resize upsampling, and optionally one decoder per
            identity group (a swap model)
  train-refiner  learn a generator's last stage: a soft face render to twice its size, with fine
            detail the network makes up (trained on real faces scaled down and blurred)
  synth     write OUT/{train,val}/{real,fake}: each real crop (linked) and K rendered fakes of it,
            `<stem>_aeK.jpg`, each by one of several generators (optionally refined), so train.py
            --paired pairs them; OUT/landmarks.jsonl is linked too.

Every step is deterministic given --seed.
"""
import argparse
import collections
import hashlib
import json
import os
import sys
import time
import zlib

import common  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
from common import LABELS, seed_everything, set_threads

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dataset import hull_mask, list_split, load_landmarks, unsharp

# The face region the generator renders, in a 224 px crop of `dfmon dataset extract` (its alignment
# puts the median landmark box at x 58-167, y 89-197): a square from mid-forehead to below the chin.
REGION_224 = (32, 55, 160)  # x, y, side
# Generator shapes train-ae accepts. Each leaves its own fingerprint (resolution, upsampling artefacts),
# and one generator's fingerprint is all a detector trained on its renders needs to learn.
RESOLUTIONS = (48, 64, 96, 128)
UPSAMPLERS = ("shuffle", "deconv", "resize")
DEFAULT_CONFIG = {"res": 64, "width": 32, "code": 256, "up": "shuffle", "decoders": 1}


def region_of(shape):
    h, w = shape[:2]
    x, y, s = (round(v * w / 224.0) for v in REGION_224)
    return x, y, min(s, w - x, h - y)


def _up_block(ch, k, up, act):
    if up == "shuffle":  # DeepFakes / DeepFaceLab
        return [nn.Conv2d(ch, 4 * k, 3, 1, 1), act(), nn.PixelShuffle(2)]
    if up == "deconv":  # transposed convolution: checkerboard artefacts
        return [nn.ConvTranspose2d(ch, k, 4, 2, 1), act()]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, k, 3, 1, 1), act()]


class FaceAE(nn.Module):
    """Encoder to a code and one or more decoders, the shape of the original DeepFakes model scaled
    down to fit 2 CPU cores: 4 strided convs to res/16, a linear bottleneck, 4 upsampling blocks.

    With decoders=K > 1 the encoder is shared and decoder j learns only the faces of identity group j
    (a hash of the person or clip), as DeepFakes trains one decoder per person: decoding a face with
    another group's decoder renders it in that decoder's likeness. With few crops per person, as here,
    a group is a crowd and the swap is weak: closer to a second reconstruction than to another face."""

    def __init__(self, res=64, width=32, code=256, up="shuffle", decoders=1):
        super().__init__()
        if res not in RESOLUTIONS or up not in UPSAMPLERS or decoders < 1:
            raise ValueError(f"unsupported generator res={res} up={up} decoders={decoders}")
        act = lambda: nn.LeakyReLU(0.1, inplace=True)  # noqa: E731
        c, self.c, self.side = width, width, res // 16
        enc, ch = [], 3
        for k in (c, 2 * c, 4 * c, 8 * c):
            enc += [nn.Conv2d(ch, k, 5, 2, 2), act()]
            ch = k
        self.enc = nn.Sequential(*enc)
        self.to_code = nn.Linear(8 * c * self.side ** 2, code)
        self.from_code = nn.Linear(code, 8 * c * self.side ** 2)

        def decoder():
            dec, ch = [], 8 * c
            for k in (4 * c, 2 * c, c, c):
                dec += _up_block(ch, k, up, act)
                ch = k
            return nn.Sequential(*dec, nn.Conv2d(ch, 3, 5, 1, 2), nn.Sigmoid())

        self.dec = decoder()  # decoder 0 keeps its name, so single-decoder checkpoints still load
        self.more_decs = nn.ModuleList(decoder() for _ in range(decoders - 1))

    def decoder(self, j):
        return self.dec if j == 0 else self.more_decs[j - 1]

    def forward(self, x, j=0):
        z = self.to_code(self.enc(x).flatten(1))
        return self.decoder(j)(self.from_code(z).view(-1, 8 * self.c, self.side, self.side))


class Refiner(nn.Module):
    """The last, high-resolution stage of a generator: a render at res px to 2*res px. Swap models draw
    the fine detail of their output (skin, eyelashes, hair) themselves, at the size they render; a 64 px
    render scaled up has none, and the target's own detail added back (--detail-transfer) is camera
    detail, not a generator's. This net adds learned detail to a bilinear upscale (residual), with
    pixel-shuffle upsampling as DeepFaceLab's decoders."""

    def __init__(self, width=32, blocks=3):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.1, inplace=True)  # noqa: E731
        self.head = nn.Conv2d(3, width, 3, 1, 1)
        body = []
        for _ in range(blocks):
            body += [nn.Conv2d(width, width, 3, 1, 1), act(), nn.Conv2d(width, width, 3, 1, 1), act()]
        self.body = nn.Sequential(*body)
        self.up = nn.Sequential(nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), act(),
                                nn.Conv2d(width, 3, 3, 1, 1))

    def forward(self, x):
        base = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        f = self.head(x)
        return base + self.up(f + self.body(f))


def load_refiner(path):
    ck = torch.load(path, map_location="cpu")
    config = ck.get("config", {})
    if config.get("kind") != "refiner":
        sys.exit(f"{path}: not a checkpoint written by train-refiner")
    model = Refiner(config["width"], config["blocks"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, config, ck


def identity_of(path):
    """The source group `dfmon dataset extract` wrote into the name (<group>_<hash>_<counter>.jpg): one
    person's photo or one clip."""
    stem = os.path.splitext(os.path.basename(path))[0]
    parts = stem.rsplit("_", 2)
    return parts[0] if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() else stem


def group_of(path, groups, key="identity", people=()):
    """The decoder a crop trains: a stable hash (not CRC-32, whose low bits are equal for names such as
    000.png ... 005.png) of its identity, so one person's crops all go to one decoder. key "file" hashes
    the whole file name instead, as the first swap generator (ae96d) was trained; key "people" gives
    each of `people` its own decoder (-1: someone else)."""
    if key == "people":
        who = identity_of(path)
        return people.index(who) if who in people else -1
    name = identity_of(path) if key == "identity" else os.path.basename(path)
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "little") % groups


def load_ae(path):
    ck = torch.load(path, map_location="cpu")
    config = dict(DEFAULT_CONFIG, **ck.get("config", {}))
    config.setdefault("group_key", "file")  # checkpoints from before identity grouping
    model = FaceAE(**{k: v for k, v in config.items() if k not in ("group_key", "people")})
    model.load_state_dict(ck["model"])
    model.eval()
    return model, config, ck


def list_reals(root, split):
    d = os.path.join(root, split, "real")
    if not os.path.isdir(d):
        sys.exit(f"{d}: no such folder (expected the seed layout DIR/{{train,val}}/real)")
    return [path for path, label in list_split(root, split) if LABELS[label] == "real"]


def training_reals(root):
    """What the generators learn from: the real training crops, at least one."""
    paths = list_reals(root, "train")
    if not paths:
        sys.exit(f"no crops under {root}/train/real")
    return paths


def read(path):
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"{path}: cannot read as an image")
    return bgr


def face_region(bgr, res):
    x, y, s = region_of(bgr.shape)
    return cv2.resize(bgr[y:y + s, x:x + s], (res, res), interpolation=cv2.INTER_AREA)


def to_batch(regions):
    x = np.stack(regions).astype(np.float32) / 255.0
    return torch.from_numpy(x[..., ::-1].transpose(0, 3, 1, 2).copy())  # BGR -> RGB, NCHW


def from_batch(t):
    x = (t.detach().clamp(0, 1).numpy().transpose(0, 2, 3, 1)[..., ::-1] * 255.0 + 0.5)
    return x.astype(np.uint8)


def train_ae(args):
    paths = training_reals(args.data)
    shape = {"res": args.res, "width": args.width, "code": args.code, "up": args.up, "decoders": args.decoders}
    config = dict(shape, group_key="identity")
    if args.per_person:  # one decoder per person with enough crops (clips), trained on those crops only
        counts = collections.Counter(identity_of(p) for p in paths)
        people = sorted(who for who, n in counts.items() if n >= args.per_person)
        if len(people) < 2:
            sys.exit(f"--per-person {args.per_person}: {len(people)} people have that many crops; a swap needs 2")
        paths = [p for p in paths if identity_of(p) in people]
        shape["decoders"] = len(people)
        config = dict(shape, group_key="people", people=people)
        print(f"{len(people)} people with >= {args.per_person} crops each: " + ", ".join(people), flush=True)
    decoders = shape["decoders"]
    print(f"{len(paths)} real crops; generator {shape}; loading face regions", flush=True)
    regions = np.stack([face_region(read(p), args.res) for p in paths])
    groups = np.array([group_of(p, decoders, config["group_key"], config.get("people", ())) for p in paths])
    members = [np.flatnonzero(groups == j) for j in range(decoders)]
    if any(len(m) == 0 for m in members):
        sys.exit(f"{decoders} decoders but the {len(paths)} crops' identities leave a group empty")
    model = FaceAE(**shape)
    rng = np.random.default_rng(args.seed)

    def loss_at(step):
        j = step % decoders  # decoders take turns; the shared encoder sees every group
        idx = rng.choice(members[j], args.batch)
        x = regions[idx].copy()
        flip = rng.random(args.batch) < 0.5
        x[flip] = x[flip, :, ::-1]
        xb = to_batch(list(x))
        return (model(xb, j) - xb).abs().mean()

    return fit(model, config, loss_at, args, "L1")


def fit(model, config, loss_at, args, what):
    """The generators' loop: Adam with a cosine decay to a tenth of --lr, a log line every --log-every
    steps and the checkpoint every --save-every steps and at the end."""
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    t0, loss_sum, n = time.time(), 0.0, 0
    for step in range(1, args.steps + 1):
        lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.item()
        n += 1
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step}/{args.steps} {what} {loss_sum / n:.4f} lr {lr:.2e} "
                  f"{(time.time() - t0) / 60:.1f} min", flush=True)
            loss_sum, n = 0.0, 0
        if step % args.save_every == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "step": step, "config": config}, args.out)
    return 0


def soften(low, rng):
    """What a generator's low-resolution render looks like next to a scaled-down photo: softer. Most
    training inputs get a Gaussian blur, so the refiner learns to make detail up, not to keep it."""
    if rng.random() < 0.8:
        low = cv2.GaussianBlur(low, (0, 0), rng.uniform(0.3, 1.2))
    return low


def train_refiner(args):
    paths = training_reals(args.data)
    res = 2 * args.res
    print(f"{len(paths)} real crops; refiner {args.res} -> {res} px; loading face regions", flush=True)
    regions = np.stack([face_region(read(p), res) for p in paths])
    config = {"kind": "refiner", "width": args.width, "blocks": args.blocks, "res": args.res}
    model = Refiner(args.width, args.blocks)
    rng = np.random.default_rng(args.seed)
    ps = max(2, min(args.patch, res) // 2 * 2)  # output patch side; the input patch is half of it

    def loss_at(step):
        lows, highs = [], []
        for i in rng.choice(len(regions), args.batch):
            hi = regions[i]
            if rng.random() < 0.5:
                hi = hi[:, ::-1]
            lo = soften(cv2.resize(np.ascontiguousarray(hi), (args.res, args.res), interpolation=cv2.INTER_AREA), rng)
            y, x = (int(v) * 2 for v in rng.integers(0, (res - ps) // 2 + 1, 2))
            highs.append(np.ascontiguousarray(hi[y:y + ps, x:x + ps]))
            lows.append(lo[y // 2:(y + ps) // 2, x // 2:(x + ps) // 2])
        out, hi_b = model(to_batch(lows)), to_batch(highs)
        # L1 on pixels and on their differences: the second keeps edges and texture from averaging out
        loss = (out - hi_b).abs().mean()
        for d in (2, 3):
            loss = loss + (out.diff(dim=d) - hi_b.diff(dim=d)).abs().mean()
        return loss

    return fit(model, config, loss_at, args, "loss")


def colour_transfer(src, ref, mask):
    """Reinhard transfer in Lab: src's mean/std inside mask set to ref's (DeepFaceLab's 'rct')."""
    m = mask > 0.5
    if m.sum() < 16:
        return src
    s = cv2.cvtColor(src, cv2.COLOR_BGR2LAB).astype(np.float32)
    r = cv2.cvtColor(ref, cv2.COLOR_BGR2LAB).astype(np.float32)
    for c in range(3):
        sm, ss = s[..., c][m].mean(), s[..., c][m].std() + 1e-3
        rm, rs = r[..., c][m].mean(), r[..., c][m].std() + 1e-3
        s[..., c] = (s[..., c] - sm) * (rs / ss) + rm
    return cv2.cvtColor(np.clip(s, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


# Mask shapes (dlib 68-point index sets): whole face, face below the brows, lower face and mouth.
_MASKS = (np.arange(68), np.r_[0:17, 27:68], np.r_[2:15, 31:36, 48:68])


def merge(bgr, render, landmarks, rng, detail_transfer=0.0):
    """Scale the render up into its region, colour-match it, blend it in under a soft mask.

    A 64 px render is far softer than the crop, which makes blur alone the cue. With probability
    detail_transfer the crop's own fine detail (above a 1-3 px Gaussian at 224 px) is added to the
    render, so what differs is the generator's structure (eyes, mouth, shading), not the sharpness."""
    h, w = bgr.shape[:2]
    x, y, s = region_of(bgr.shape)
    up = cv2.resize(render, (s, s), interpolation=[cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(0, 2))])
    face = bgr.copy()
    face[y:y + s, x:x + s] = up
    pts = np.asarray(landmarks, np.float32).reshape(-1, 2)
    mask = hull_mask(pts[_MASKS[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]], (h, w))
    inside = np.zeros((h, w), np.float32)
    inside[y:y + s, x:x + s] = 1.0
    mask *= inside
    face = colour_transfer(face, bgr, mask)
    if rng.random() < detail_transfer:
        fine = bgr.astype(np.float32) - cv2.GaussianBlur(bgr, (0, 0), rng.uniform(1.0, 3.0) * w / 224).astype(np.float32)
        face = np.clip(face.astype(np.float32) + rng.uniform(0.6, 1.2) * fine + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # swap tools' optional sharpening of the rendered face
        face = unsharp(face, rng.uniform(0.5, 1.5), rng.uniform(0.3, 1.5))
    k = int(rng.integers(0, 4)) * max(1, w // 112)
    if k:
        mask = cv2.erode(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(w / 100, w / 25))
    if rng.random() < 0.2 and (mask > 0.5).sum() > 64:  # Poisson blending, as in faceswap's "seamless"
        bin_mask = (mask > 0.5).astype(np.uint8) * 255
        ys, xs = np.nonzero(bin_mask)
        centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
        try:
            return cv2.seamlessClone(face, bgr, bin_mask, centre, cv2.NORMAL_CLONE)
        except cv2.error:
            pass
    m = mask[..., None]
    return np.clip(bgr.astype(np.float32) * (1 - m) + face.astype(np.float32) * m + 0.5, 0, 255).astype(np.uint8)


def link(src, dst):
    if not os.path.lexists(dst):
        os.symlink(os.path.abspath(src), dst)


def synth(args):
    gens = [load_ae(path) for path in args.ae]
    refiner = load_refiner(args.refiner) if args.refiner else None
    marks = load_landmarks(args.data)
    os.makedirs(args.out, exist_ok=True)
    link(os.path.join(args.data, "landmarks.jsonl"), os.path.join(args.out, "landmarks.jsonl"))
    counts = {}
    for split in ("train", "val"):
        real_dir, fake_dir = os.path.join(args.out, split, "real"), os.path.join(args.out, split, "fake")
        os.makedirs(real_dir, exist_ok=True)
        os.makedirs(fake_dir, exist_ok=True)
        paths = [p for p in list_reals(args.data, split) if os.path.basename(p) in marks]
        made = 0
        for p in paths:  # one crop at a time: each fake picks its own generator and decoder
            bgr = read(p)
            name = os.path.basename(p)
            stem = os.path.splitext(name)[0]
            link(p, os.path.join(real_dir, name))
            renders = {}  # (generator, decoder) -> render of this crop
            for k in range(args.per_real):
                rng = np.random.default_rng([args.seed, zlib.crc32(stem.encode()), k])
                # (one generator draws nothing here, so its fakes match those of earlier versions)
                g = int(rng.integers(0, len(gens))) if len(gens) > 1 else 0
                model, config, _ = gens[g]
                j = 0
                n_dec = config["decoders"]
                if n_dec > 1:  # another group's (person's) decoder: a swap, not a reconstruction
                    own = group_of(p, n_dec, config["group_key"], config.get("people", ()))
                    j = int(rng.integers(0, n_dec)) if own < 0 else (own + 1 + int(rng.integers(0, n_dec - 1))) % n_dec
                if (g, j) not in renders:
                    with torch.no_grad():
                        out = model(to_batch([face_region(bgr, config["res"])]), j)
                        renders[g, j] = from_batch(refiner[0](out.clamp(0, 1)) if refiner else out)[0]
                render = renders[g, j]
                fake = merge(bgr, render, marks[name], rng, args.detail_transfer)
                cv2.imwrite(os.path.join(fake_dir, f"{stem}_ae{k}.jpg"), fake, [cv2.IMWRITE_JPEG_QUALITY, 95])
                made += 1
        counts[split] = {"real": len(paths), "fake": made}
        print(f"{split}: {len(paths)} real, {made} rendered fakes", flush=True)
    with open(os.path.join(args.out, "render.json"), "w") as f:
        json.dump({"generators": [{"ae": os.path.abspath(path), "step": ck.get("step"), "config": config}
                                  for path, (_, config, ck) in zip(args.ae, gens)],
                   "refiner": {"path": os.path.abspath(args.refiner), "step": refiner[2].get("step"),
                               "config": refiner[1]} if refiner else None,
                   "seed": args.seed, "per_real": args.per_real, "detail_transfer": args.detail_transfer,
                   "counts": counts}, f, indent=1)
    return 0


def positive_int(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {v}")
    return v


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train-ae", help="train the face autoencoder on DATA/train/real")
    t.add_argument("--res", type=int, choices=RESOLUTIONS, default=DEFAULT_CONFIG["res"],
                   help="render resolution in px (default 64)")
    t.add_argument("--up", choices=UPSAMPLERS, default=DEFAULT_CONFIG["up"],
                   help="decoder upsampling: pixel shuffle (DeepFakes), transposed conv or resize+conv")
    t.add_argument("--width", type=int, default=DEFAULT_CONFIG["width"], help="channels of the first conv")
    t.add_argument("--code", type=int, default=DEFAULT_CONFIG["code"], help="bottleneck size")
    t.add_argument("--per-person", type=positive_int, metavar="N",
                   help="one decoder per person (clip) with at least N training crops, trained on those only; "
                        "synth then gives every face one of these people's (DeepFakes' per-person swap)")
    t.add_argument("--decoders", type=positive_int, default=1,
                   help="K > 1: one decoder per identity group, shared encoder; synth then swaps groups")
    r = sub.add_parser("train-refiner", help="train a generator's last stage (render to twice its size) on DATA/train/real")
    r.add_argument("--res", type=positive_int, default=64, help="input (render) resolution; the output is twice it")
    r.add_argument("--patch", type=positive_int, default=64, help="output patch side trained on (the net is local)")
    r.add_argument("--width", type=positive_int, default=32)
    r.add_argument("--blocks", type=positive_int, default=3, help="residual blocks at the input resolution")
    for q, steps in ((t, 4000), (r, 3000)):  # what fit() reads
        q.add_argument("--data", required=True)
        q.add_argument("--out", required=True, help="checkpoint file (.pt)")
        q.add_argument("--steps", type=int, default=steps)
        q.add_argument("--batch", type=int, default=32)
        q.add_argument("--lr", type=float, default=5e-4)
        q.add_argument("--log-every", type=int, default=100)
        q.add_argument("--save-every", type=int, default=500)
    s = sub.add_parser("synth", help="render fakes of every real crop in DATA into OUT")
    s.add_argument("--data", required=True, help="dataset with {train,val}/real and landmarks.jsonl")
    s.add_argument("--ae", required=True, nargs="+",
                   help="checkpoints written by train-ae; each fake uses one of them, picked at random")
    s.add_argument("--out", required=True)
    s.add_argument("--refiner", help="checkpoint written by train-refiner: every render goes through it (twice "
                                     "the size, with made-up fine detail) before it is merged")
    s.add_argument("--per-real", type=int, default=1)
    s.add_argument("--detail-transfer", type=float, default=0.0,
                   help="share of fakes whose render gets the crop's own fine detail (default 0)")
    for q in (t, r, s):
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    set_threads(args.threads)
    seed_everything(args.seed)
    return {"train-ae": train_ae, "train-refiner": train_refiner, "synth": synth}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
