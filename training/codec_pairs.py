"""Re-encode a paired dataset with H.264 at the face's own scale, each real and its fakes alike.

A real deepfake video is encoded after the swap: the codec quantises the fresh fine detail of the blend
at the size the face has in the frame. Our synthetic fakes are blended in 224 px crops and at most
JPEG'd by train.py's augmentation, so a detector can lean on fine residual detail that a video codec
would have removed or reshaped (4:2:0 chroma, 4x4 transforms, deblocking). This writes
OUT/{train,val}/{real,fake}: every real crop and each of its fakes resized to one face size (--sides),
encoded with libx264 at one constant QP (all intra), decoded, resized back and stored losslessly (PNG).
A real and its fakes share size and QP, so the codec is no shortcut; the pairs stay pairs for
train.py --paired. --fraction leaves the rest of the pairs untouched (linked). Deterministic given
--seed. Needs the ffmpeg CLI (scripts/install-deps installs it).

  /usr/bin/python3 training/codec_pairs.py --data DS --out DS_codec [--qp 18 34] [--sides 96 320]
"""
import argparse
import collections
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import zlib

import common  # noqa: F401  (first: dataset loads torch)

import cv2
import numpy as np

from dataset import list_pairs

SIDE_STEP = 16  # face sizes are drawn on this grid so that one ffmpeg run encodes many crops
CHUNK = 256  # frames per ffmpeg run at most (memory)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="paired dataset DIR/{train,val}/{real,fake} (dfmon dataset synth)")
    p.add_argument("--out", required=True, help="output dataset (must not exist)")
    p.add_argument("--qp", type=int, nargs=2, default=(18, 34), metavar=("MIN", "MAX"),
                   help="x264 constant QP range, drawn per pair (1-51; 18 is visually clean, 34 blocky)")
    p.add_argument("--sides", type=int, nargs=2, default=(96, 320), metavar=("MIN", "MAX"),
                   help="side in px the crop has while encoded, drawn per pair on a 16 px grid (the crop's "
                        "face is about half of it)")
    p.add_argument("--fraction", type=float, default=1.0, help="share of pairs re-encoded; the rest are linked")
    p.add_argument("--preset", default="medium", help="x264 preset")
    p.add_argument("--splits", nargs="+", default=("train", "val"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="ffmpeg runs at once")
    a = p.parse_args(argv)
    if not 1 <= a.qp[0] <= a.qp[1] <= 51:
        p.error(f"--qp {a.qp[0]} {a.qp[1]}: need 1 <= MIN <= MAX <= 51 (0 would be lossless)")
    if not 16 <= a.sides[0] <= a.sides[1]:
        p.error(f"--sides {a.sides[0]} {a.sides[1]}: need 16 <= MIN <= MAX")
    if not 0.0 <= a.fraction <= 1.0:
        p.error(f"--fraction {a.fraction}: must be within [0, 1]")
    if os.path.exists(a.out):
        p.error(f"--out {a.out}: already exists")
    if shutil.which("ffmpeg") is None:
        p.error("ffmpeg not found on PATH (scripts/install-deps installs it)")
    return a


def draw(seed, stem, qp, sides, fraction):
    """(encode?, side, qp) of one pair: a function of the seed and the real crop's name only."""
    rng = np.random.default_rng([seed, zlib.crc32(stem.encode())])
    encode = rng.random() < fraction
    grid = np.arange(sides[0] - sides[0] % 2, sides[1] + 1, SIDE_STEP)
    return encode, int(rng.choice(grid)), int(rng.integers(qp[0], qp[1] + 1))


def h264_roundtrip(frames, qp, preset):
    """Encodes equally sized BGR frames as all-intra H.264 at a constant QP and decodes them again."""
    h, w = frames[0].shape[:2]
    enc = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", "25", "-i", "-",
         "-c:v", "libx264", "-preset", preset, "-qp", str(qp), "-x264-params", "keyint=1", "-pix_fmt", "yuv420p",
         "-threads", "1", "-f", "h264", "-"],
        input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames), capture_output=True)
    if enc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not encode {len(frames)} frames of {w}x{h} at QP {qp}: "
                           f"{enc.stderr.decode(errors='replace').strip()}")
    dec = subprocess.run(["ffmpeg", "-v", "error", "-f", "h264", "-i", "-", "-f", "rawvideo", "-pix_fmt", "bgr24",
                          "-threads", "1", "-"], input=enc.stdout, capture_output=True)
    raw = np.frombuffer(dec.stdout, np.uint8)
    if dec.returncode != 0 or raw.size != len(frames) * h * w * 3:
        raise RuntimeError(f"ffmpeg decoded {raw.size // (h * w * 3)} of {len(frames)} frames of {w}x{h} at QP {qp}: "
                           f"{dec.stderr.decode(errors='replace').strip()}")
    return list(raw.reshape(len(frames), h, w, 3)), len(enc.stdout)


def read(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise IOError(f"{path}: cannot read as an image")
    return img


def encode_bucket(paths_out, side, qp, preset):
    """Re-encodes each (source path, output path) at side x side and QP; returns the H.264 bytes."""
    frames, shapes = [], []
    for src, _ in paths_out:
        img = read(src)
        shapes.append(img.shape[:2])
        interp = cv2.INTER_AREA if side < img.shape[0] else cv2.INTER_LINEAR
        frames.append(cv2.resize(img, (side, side), interpolation=interp))
    decoded, nbytes = h264_roundtrip(frames, qp, preset)
    for (src, dst), (h, w), img in zip(paths_out, shapes, decoded):
        interp = cv2.INTER_AREA if side > h else cv2.INTER_LINEAR
        if not cv2.imwrite(dst, cv2.resize(img, (w, h), interpolation=interp)):
            raise IOError(f"{dst}: cannot write")
    return nbytes


def png_name(path):
    return os.path.splitext(os.path.basename(path))[0] + ".png"


def main(argv=None):
    a = parse_args(argv)
    buckets = collections.defaultdict(list)  # (side, qp) -> [(src, dst)]
    stats, renamed = {}, set()
    for split in a.splits:
        for label in ("real", "fake"):
            os.makedirs(os.path.join(a.out, split, label))
        n_enc = n_link = 0
        for real, fakes in list_pairs(a.data, split):
            stem = os.path.splitext(os.path.basename(real))[0]
            encode, side, qp = draw(a.seed, f"{split}/{stem}", a.qp, a.sides, a.fraction)
            members = [(real, "real")] + [(f, "fake") for f in fakes]
            for src, label in members:
                if encode:
                    buckets[(side, qp)].append((src, os.path.join(a.out, split, label, png_name(src))))
                    renamed.add(f"{split}/{label}/{os.path.basename(src)}")
                else:
                    os.link(src, os.path.join(a.out, split, label, os.path.basename(src)))
            n_enc += encode
            n_link += not encode
        stats[split] = {"pairs_encoded": n_enc, "pairs_linked": n_link}
    lm = os.path.join(a.data, "landmarks.jsonl")
    if os.path.exists(lm):  # encoded crops are renamed (.png); --detail-fakes looks landmarks up by name
        with open(lm) as f, open(os.path.join(a.out, "landmarks.jsonl"), "w") as out:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    if rec["file"] in renamed:
                        rec["file"] = os.path.splitext(rec["file"])[0] + ".png"
                    out.write(json.dumps(rec) + "\n")
    total_bytes = 0
    with concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as pool:  # ffmpeg does the work; threads wait
        futures = [pool.submit(encode_bucket, items[i:i + CHUNK], side, qp, a.preset)
                   for (side, qp), items in sorted(buckets.items()) for i in range(0, len(items), CHUNK)]
        for fut in concurrent.futures.as_completed(futures):
            total_bytes += fut.result()
    frames = sum(len(v) for v in buckets.values())
    info = {"source": os.path.abspath(a.data), "seed": a.seed, "qp": list(a.qp), "sides": list(a.sides),
            "side_step": SIDE_STEP, "fraction": a.fraction, "preset": a.preset, "codec": "libx264 all-intra yuv420p",
            "splits": stats, "frames_encoded": frames, "buckets": len(buckets),
            "mean_bytes_per_frame": round(total_bytes / frames, 1) if frames else 0}
    with open(os.path.join(a.out, "codec.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (IOError, RuntimeError, FileNotFoundError) as e:
        print(f"codec_pairs: {e}", file=sys.stderr)
        sys.exit(1)
