"""Face-crop dataset in the seed layout DIR/{train,val}/{real,fake}/*.{jpg,jpeg,png}.

Images are aligned face crops (as written by `dfmon dataset extract` / `dfmon dataset synth`); labels are
real=0, fake=1. Training augmentation degrades BOTH classes the same way (JPEG, blur, noise, rescaling),
so compression or sharpness cannot become the cue that separates them.
"""
import json
import os

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from common import LABELS, MEAN, SCALE, STD

IMG_EXTS = (".jpg", ".jpeg", ".png")


def list_split(root, split):
    """[(path, label)] for root/split/{real,fake}, sorted for reproducibility."""
    items = []
    for label, name in enumerate(LABELS):
        d = os.path.join(root, split, name)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.lower().endswith(IMG_EXTS):
                items.append((os.path.join(d, f), label))
    return items


def to_tensor(rgb_u8):
    """HxWx3 uint8 RGB → normalised CHW float tensor (the preprocessing written into the model card)."""
    x = rgb_u8.astype(np.float32) * SCALE
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


AUGMENT_LEVELS = ("full", "heavy", "light", "colour")
# Degradation of "full" and "heavy": P(down-up rescale), P(blur), P(noise), P(JPEG), lowest JPEG quality.
_DEGRADE = {"full": (0.3, 0.2, 0.2, 0.6, 40), "heavy": (0.6, 0.35, 0.35, 0.9, 30)}


def augment(bgr, rng, level="full", flip=True):
    """Photometric and degradation augmentation of one BGR uint8 crop at its native resolution.

    Order follows a capture pipeline: colour, then resolution loss, blur and sensor noise, and
    compression last. "full" is the shipped recipe; "heavy" the same steps more often and JPEG down to
    quality 30; "light" keeps only mild JPEG (quality 75-95) and "colour" only the flip and colour
    jitter. They were added to test whether strong degradation (which erases a sharpened face's extra
    detail but leaves a softened face soft) taught "soft = fake" (it did not: the bias stays without it)
    and which level carries over to real fakes (none better than "full"; models/README.md).
    flip=False leaves the geometry alone (pretrain.py mirrors the crop together with its landmarks)."""
    img = bgr
    if rng.random() < 0.5 and flip:  # (drawn either way: the same rng gives the same other draws)
        img = img[:, ::-1]
    if rng.random() < 0.8:  # small colour jitter: brightness, contrast, saturation
        f = img.astype(np.float32)
        f = f * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15)
        f = (f - f.mean()) * rng.uniform(0.85, 1.15) + f.mean()
        gray = f.mean(axis=2, keepdims=True)
        f = gray + (f - gray) * rng.uniform(0.85, 1.15)
        img = np.clip(f, 0, 255).astype(np.uint8)
    if level == "colour":
        return np.ascontiguousarray(img)
    if level == "light":
        if rng.random() < 0.5:
            img = _jpeg(img, int(rng.integers(75, 96)))
        return np.ascontiguousarray(img)
    p_rescale, p_blur, p_noise, p_jpeg, q_min = _DEGRADE[level]
    h, w = img.shape[:2]
    if rng.random() < p_rescale:  # down-then-up scaling: low-resolution sources
        s = rng.uniform(0.35, 0.9)
        small = cv2.resize(img, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < p_blur:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=rng.uniform(0.3, 1.5))
    if rng.random() < p_noise:
        noise = rng.normal(0.0, rng.uniform(1.0, 6.0), img.shape)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < p_jpeg:
        img = _jpeg(img, int(rng.integers(q_min, 96)))
    return np.ascontiguousarray(img)


def _jpeg(img, quality):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


def unsharp(img, sigma, amount):
    """Unsharp masking: img + amount * (img - Gaussian blur of img)."""
    return cv2.addWeighted(img, 1.0 + amount, cv2.GaussianBlur(img, (0, 0), sigma), -amount, 0)


def hull_mask(points, shape):
    """Float32 mask of the given (h, w) shape, 1 inside the convex hull of the points, 0 outside."""
    mask = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.asarray(points).astype(np.int32)), 1.0)
    return mask


# Landmark index sets (dlib 68-point order) of the regions a detail fake changes: whole face, lower face
# and mouth, eyes with brows — the mask shapes `dfmon dataset synth` blends with.
_REGIONS = (np.arange(68), np.r_[2:15, 31:36, 48:68], np.r_[17:27, 36:48])


# The kinds of change detail_fake makes, in the order of its draw.
DETAIL_KINDS = ("sharpened", "blurred", "grain", "resampled", "recompressed")


def detail_fake(bgr, landmarks, rng, kind=None):
    """A fake made from the real crop itself: only the detail inside a soft face-region mask changes
    (sharpened, blurred, regrained, resampled or recompressed), with no geometric or colour change.
    kind (one of DETAIL_KINDS) fixes the change instead of drawing it, to measure one at a time.

    Self-blends with a shifted source come out softer than the real face 93 % of the time, and a network
    trained on them learns "soft = fake, sharp = real"; real swaps are often the sharper ones. These
    fakes make a detail mismatch in either direction the cue."""
    pts = np.asarray(landmarks, np.float32).reshape(-1, 2)[_REGIONS[int(rng.integers(0, 3))]]
    h, w = bgr.shape[:2]
    mask = hull_mask(pts, (h, w))
    k = int(rng.integers(0, 3))
    if k:
        kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
        mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    sigma = rng.uniform(w / 80, w / 16)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)[..., None] * rng.choice([0.75, 0.9, 1.0, 1.0])
    op = int(rng.integers(0, len(DETAIL_KINDS))) if kind is None else DETAIL_KINDS.index(kind)
    if op == 0:  # sharpen
        s, a = rng.uniform(0.5, 1.5), rng.uniform(0.5, 2.5)
        inner = unsharp(bgr, s, a)
    elif op == 1:  # blur
        inner = cv2.GaussianBlur(bgr, (0, 0), rng.uniform(0.5, 1.5))
    elif op == 2:  # another sensor's grain
        inner = np.clip(bgr + rng.normal(0.0, rng.uniform(2.0, 7.0), bgr.shape), 0, 255)
    elif op == 3:  # rendered at another resolution and scaled back
        f = rng.uniform(0.4, 0.8)
        small = cv2.resize(bgr, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
        inner = cv2.resize(small, (w, h), interpolation=[cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(0, 2))])
    else:  # compressed once more than the rest of the frame
        inner = _jpeg(bgr, int(rng.integers(30, 80)))
    out = bgr.astype(np.float32) * (1.0 - mask) + inner.astype(np.float32) * mask
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def load_landmarks(root):
    """{crop file name: 68 landmarks} from the ROOT/landmarks.jsonl `dfmon dataset extract` writes."""
    path = os.path.join(root, "landmarks.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: needed for --detail-fakes (written by dfmon dataset extract)")
    out = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            out[os.path.basename(rec["file"])] = rec["landmarks"]
    return out


class FaceCrops(Dataset):
    def __init__(self, root, split, size, train, augment_level="full"):
        self.augment_level = augment_level
        self.items = list_split(root, split)
        if not self.items:
            raise FileNotFoundError(f"no images under {os.path.join(root, split)}/{{real,fake}}")
        self.size = size  # changed in place by progressive resizing
        self.train = train

    def __len__(self):
        return len(self.items)

    def labels(self):
        return np.array([lab for _, lab in self.items], dtype=np.int64)

    def __getitem__(self, i):
        path, label = self.items[i]
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise IOError(f"cannot read {path}")
        if self.train:
            # Seed from torch's RNG: reproducible under torch.manual_seed and distinct per worker.
            bgr = augment(bgr, np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, (1,)))), self.augment_level)
        if bgr.shape[:2] != (self.size, self.size):
            shrink = bgr.shape[0] > self.size
            bgr = cv2.resize(bgr, (self.size, self.size),
                             interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return to_tensor(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), label


class PairedCrops(Dataset):
    """Each real crop together with one of its own synthetic fakes (`<stem>_sbiK` / `<stem>_swapK` from
    `dfmon dataset synth`), augmented with the SAME random draws. With the pair in one batch the only
    difference the network can use is the manipulation itself, not who or where the person is — the
    pairing Self-Blended Images trains with."""

    def __init__(self, root, split, size, augment_level="full", detail_fakes=0.0):
        self.augment_level = augment_level
        self.detail_fakes = detail_fakes
        self.landmarks = load_landmarks(root) if detail_fakes > 0 else {}
        self.pairs = list_pairs(root, split)
        self.size = size

    def __len__(self):
        return len(self.pairs)

    def _load(self, path, seed, make_fake=False):
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise IOError(f"cannot read {path}")
        if make_fake:
            bgr = detail_fake(bgr, self.landmarks[os.path.basename(path)], np.random.default_rng(seed + 1))
        bgr = augment(bgr, np.random.default_rng(seed), self.augment_level)
        if bgr.shape[:2] != (self.size, self.size):
            shrink = bgr.shape[0] > self.size
            bgr = cv2.resize(bgr, (self.size, self.size),
                             interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return to_tensor(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def __getitem__(self, i):
        real, fakes = self.pairs[i]
        seed = int(torch.randint(0, 2 ** 31 - 1, (1,)))
        if self.detail_fakes > 0 and float(torch.rand(1)) < self.detail_fakes \
                and os.path.basename(real) in self.landmarks:
            return torch.stack([self._load(real, seed), self._load(real, seed, make_fake=True)]), torch.tensor([0, 1])
        fake = fakes[int(torch.randint(0, len(fakes), (1,)))]
        return torch.stack([self._load(real, seed), self._load(fake, seed)]), torch.tensor([0, 1])


def list_pairs(root, split):
    """[(real path, [its fake paths])] of ROOT/SPLIT: a fake `<stem>_<k>.<ext>` belongs to the real
    `<stem>.<ext>` (the names `dfmon dataset synth` and render_fakes.py write)."""
    real_dir, fake_dir = os.path.join(root, split, "real"), os.path.join(root, split, "fake")
    fakes = {}
    for f in sorted(os.listdir(fake_dir)) if os.path.isdir(fake_dir) else []:
        fakes.setdefault(f.rsplit("_", 1)[0], []).append(os.path.join(fake_dir, f))
    pairs = []
    for f in sorted(os.listdir(real_dir)) if os.path.isdir(real_dir) else []:
        stem = os.path.splitext(f)[0]
        if f.lower().endswith(IMG_EXTS) and stem in fakes:
            pairs.append((os.path.join(real_dir, f), fakes[stem]))
    if not pairs:
        raise FileNotFoundError(f"no real/fake pairs under {os.path.join(root, split)} (made by dfmon dataset synth)")
    return pairs


def _collate_pairs(batch):
    xs, ys = zip(*batch)
    return torch.cat(xs), torch.cat(ys)


def balanced_sampler(ds, seed):
    """Samples each class equally often per epoch (with replacement), whatever the class counts."""
    labels = ds.labels()
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    weights = 1.0 / np.maximum(counts[labels], 1.0)
    g = torch.Generator()
    g.manual_seed(seed)
    return WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), num_samples=len(labels),
                                 replacement=True, generator=g)


def _worker_init(_):
    # Worker processes only decode and augment: one thread each, so they don't oversubscribe 2 cores.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_loaders(root, size, batch, workers=0, seed=0, paired=False, augment_level="full", detail_fakes=0.0):
    val = FaceCrops(root, "val", size, train=False)
    if paired:  # batch/2 real crops, each with one of its own fakes
        train = PairedCrops(root, "train", size, augment_level, detail_fakes)
        g = torch.Generator()
        g.manual_seed(seed)
        train_dl = DataLoader(train, batch_size=max(1, batch // 2), shuffle=True, generator=g, num_workers=workers,
                              drop_last=len(train) >= batch // 2, worker_init_fn=_worker_init,
                              collate_fn=_collate_pairs)
        return train_dl, DataLoader(val, batch_size=batch, shuffle=False, num_workers=workers,
                                    worker_init_fn=_worker_init)
    train = FaceCrops(root, "train", size, train=True, augment_level=augment_level)
    train_dl = DataLoader(train, batch_size=batch, sampler=balanced_sampler(train, seed),
                          num_workers=workers, drop_last=len(train) >= batch, worker_init_fn=_worker_init)
    val_dl = DataLoader(val, batch_size=batch, shuffle=False, num_workers=workers, worker_init_fn=_worker_init)
    return train_dl, val_dl
