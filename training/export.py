#!/usr/bin/python3
"""Exports a training checkpoint to ONNX for OpenCV 4.6 DNN, checks parity and writes the model card.

  /usr/bin/python3 training/export.py --checkpoint runs/r18/best.pt --out models/resnet18.onnx \
      --card models/resnet18.json --parity-images data/seed/val

Steps: export at 224x224, opset 13, static batch 1; strip Identity nodes (OpenCV 4.6 cannot import
them); onnx.checker; run the same inputs through PyTorch (the training-form model, eval mode) and
cv2.dnn, compare softmax outputs (max abs diff must be <= --tol on >= 8 inputs, else exit 1); try
batches of 2/4/8 in cv2.dnn to fill the card's max_batch (0 = any batch, 1 = batch 1 only).
"""
import argparse
import copy
import datetime
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (first: sets the OpenMP wait policy before torch loads)

import cv2
import numpy as np
import onnx
import torch

from common import LABELS, MEAN, SCALE, STD, set_threads  # noqa: E402
from dataset import IMG_EXTS, to_tensor  # noqa: E402
from models import ARCHS, VisionTransformer, build_model, export_ready, load_weights  # noqa: E402
import onnx_import  # noqa: E402  (it imports this module only inside its parity check)

EXPORT_SIZE = 224
MIN_PARITY_INPUTS = 8
BATCH_TRIALS = (2, 4, 8)

# Deterministic synthetic images (uint8 HxWx3 RGB), simple enough to rebuild in C++ from the recipe:
#   constant: every pixel = rgb
#   gradient: R = x*255 // (W-1), G = y*255 // (H-1), B = (x+y)*255 // (W+H-2)   (integer division)
#   checker:  pixel = rgb1 if ((x // cell) + (y // cell)) is odd else rgb0
SYNTHETIC_RECIPES = (
    {"name": "black", "kind": "constant", "rgb": [0, 0, 0]},
    {"name": "white", "kind": "constant", "rgb": [255, 255, 255]},
    {"name": "gray", "kind": "constant", "rgb": [128, 128, 128]},
    {"name": "skin", "kind": "constant", "rgb": [224, 172, 140]},
    {"name": "blue", "kind": "constant", "rgb": [30, 60, 200]},
    {"name": "gradient", "kind": "gradient"},
    {"name": "checker16", "kind": "checker", "cell": 16, "rgb0": [20, 20, 20], "rgb1": [235, 200, 160]},
    {"name": "checker5", "kind": "checker", "cell": 5, "rgb0": [250, 40, 40], "rgb1": [40, 250, 90]},
)


def render_recipe(recipe, width=EXPORT_SIZE, height=EXPORT_SIZE):
    kind = recipe["kind"]
    if kind == "constant":
        return np.tile(np.asarray(recipe["rgb"], np.uint8), (height, width, 1))
    y, x = np.mgrid[0:height, 0:width]
    if kind == "gradient":
        return np.stack([x * 255 // (width - 1), y * 255 // (height - 1),
                         (x + y) * 255 // (width + height - 2)], axis=2).astype(np.uint8)
    if kind == "checker":
        odd = (((x // recipe["cell"]) + (y // recipe["cell"])) % 2 == 1)[..., None]
        return np.where(odd, np.asarray(recipe["rgb1"], np.uint8),
                        np.asarray(recipe["rgb0"], np.uint8)).astype(np.uint8)
    raise ValueError(f"unknown recipe kind {kind}")


def load_parity_images(specs, limit=16, size=EXPORT_SIZE):
    """RGB uint8 crops from files and/or directories (searched recursively, sorted, evenly sampled)."""
    files = []
    for spec in specs or []:
        if os.path.isdir(spec):
            for root, _, names in sorted(os.walk(spec)):
                files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(IMG_EXTS)]
        else:
            files.append(spec)
    if len(files) > limit:  # spread over the sorted list, so both class folders are represented
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    images = []
    for f in files:
        bgr = cv2.imread(f, cv2.IMREAD_COLOR)
        if bgr is None:
            raise IOError(f"cannot read parity image {f}")
        interp = cv2.INTER_AREA if bgr.shape[0] > size else cv2.INTER_LINEAR
        images.append((os.path.basename(f), cv2.cvtColor(cv2.resize(bgr, (size, size), interpolation=interp),
                                                         cv2.COLOR_BGR2RGB)))
    return images


def parity_inputs(specs=None, limit=16, minimum=MIN_PARITY_INPUTS):
    """[(name, rgb uint8)]: up to `limit` real crops if given, topped up with synthetic recipes to
    `minimum`."""
    images = load_parity_images(specs, limit)
    for r in SYNTHETIC_RECIPES:
        if len(images) >= minimum:
            break
        images.append((r["name"], render_recipe(r)))
    return images


def strip_identity(model):
    """Removes Identity nodes in place (OpenCV 4.6 fails to import them), rewiring consumers to the
    Identity's input. An Identity that produces a graph output is removed by renaming its producer's
    output instead."""
    g = model.graph
    graph_outputs = {o.name for o in g.output}
    producer = {out: n for n in g.node for out in n.output}
    rename = {}
    removed = []
    for n in g.node:
        if n.op_type != "Identity":
            continue
        src, dst = n.input[0], n.output[0]
        if dst in graph_outputs:
            if src not in producer or src in graph_outputs:
                continue  # nothing to rename into; keep it (does not occur in torch exports)
            p = producer[src]
            p.output[list(p.output).index(src)] = dst
            rename[src] = dst
        else:
            rename[dst] = src
        removed.append(n)

    def resolve(name):
        while name in rename:
            name = rename[name]
        return name

    for n in removed:
        g.node.remove(n)
    for n in g.node:
        for i, name in enumerate(n.input):
            n.input[i] = resolve(name)
    return len(removed)


def export_onnx(module, path, size=EXPORT_SIZE):
    """torch.onnx.export at static batch 1, opset 13, then strip Identity nodes and run the checker."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, torch.zeros(1, 3, size, size), path, opset_version=13,
                          input_names=["input"], output_names=["logits"], do_constant_folding=True)
    model = onnx.load(path)
    n = strip_identity(model)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return n


def softmax(logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_parity(reference, onnx_path, blobs, tol=1e-4, batch_trials=BATCH_TRIALS):
    """Compares softmax(reference(x)) with softmax(cv2.dnn(x)) per input and at larger batch sizes.

    Returns {"max_abs_diff", "n_inputs", "max_batch", "batch_diffs", "ok", "probs"}; max_batch is 0 when
    every tried batch size passes, else the largest passing size before the first failure."""
    reference.eval()
    with torch.no_grad():
        ref = softmax(np.concatenate([reference(torch.from_numpy(b[None])).numpy() for b in blobs]))
    result = {"n_inputs": len(blobs), "batch_diffs": {}, "probs": ref}
    try:
        net = cv2.dnn.readNetFromONNX(onnx_path)
        outs = []
        for b in blobs:
            net.setInput(b[None])
            outs.append(net.forward().reshape(1, -1))
    except cv2.error as e:
        result.update(max_abs_diff=float("inf"), ok=False, max_batch=1,
                      error="cv2.dnn: " + str(e).strip().splitlines()[-1][:300])
        return result
    diff = float(np.abs(softmax(np.concatenate(outs)) - ref).max())
    result.update(max_abs_diff=diff, ok=diff <= tol)
    max_batch, largest_ok = 0, 1
    stacked = np.stack(blobs)
    # An unsupported batch makes OpenCV log a multi-line error before raising; the raise is enough.
    log_level = cv2.getLogLevel()
    cv2.setLogLevel(0)  # 0 = LOG_LEVEL_SILENT
    for bs in batch_trials:
        if bs > len(blobs):
            break
        try:  # one batch of the first bs inputs per size keeps the trial cheap
            net = cv2.dnn.readNetFromONNX(onnx_path)
            net.setInput(stacked[:bs])
            got = net.forward().reshape(bs, -1)
            bdiff = float(np.abs(softmax(got) - ref[:bs]).max())
            result["batch_diffs"][bs] = bdiff
            passed = bdiff <= tol
        except cv2.error as e:
            result["batch_diffs"][bs] = "error: " + str(e).strip().splitlines()[-1][:160]
            passed = False
        if not passed:
            max_batch = largest_ok
            break
        largest_ok = bs
    cv2.setLogLevel(log_level)
    result["max_batch"] = max_batch
    return result


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _round(v, nd=4):
    return None if v is None else round(float(v), nd)


def make_card(name, arch, onnx_path, max_batch, parity, training=None, metrics=None, size=EXPORT_SIZE):
    """The model card dict in the "dfmon.model_card/1" format the C++ side parses."""
    training = training or {}
    val = ((metrics or {}).get("val") or {})
    return {
        "schema": "dfmon.model_card/1",
        "name": name,
        "architecture": arch,
        "file": os.path.basename(onnx_path),
        "input": {"width": size, "height": size, "channels": 3, "color": "RGB", "layout": "NCHW",
                  "scale": SCALE, "mean": list(MEAN), "std": list(STD), "max_batch": int(max_batch)},
        "output": {"type": "logits", "labels": list(LABELS), "fake_index": LABELS.index("fake")},
        "training": {"data": training.get("data", ""), "recipe": training.get("recipe", ""),
                     "epochs": training.get("epochs", 0), "images_seen": training.get("images_seen", 0),
                     "wall_min": training.get("wall_min", 0), "seed": training.get("seed", 0)},
        "metrics": {"val": {"n": val.get("n", 0), "accuracy": _round(val.get("accuracy", 0)),
                            "auc": _round(val.get("auc", 0))}},
        "parity": {"max_abs_diff": float(f"{parity['max_abs_diff']:.3g}"), "n_inputs": parity["n_inputs"],
                   "opencv": cv2.__version__, "torch": torch.__version__.split("+")[0]},
        "date": datetime.date.today().isoformat(),
        "onnx_sha256": sha256_file(onnx_path),
    }


def export_and_check(reference, module, onnx_path, card_path, name, arch, images, training=None,
                     metrics=None, tol=1e-4, log=print):
    """Exports `module`, checks parity against `reference` on `images` ([(name, rgb uint8 224x224)]),
    writes the card. Returns (card, parity); the card is written only when parity passes."""
    if len(images) < MIN_PARITY_INPUTS:
        raise ValueError(f"parity needs >= {MIN_PARITY_INPUTS} inputs, got {len(images)}")
    stripped = export_onnx(module, onnx_path)
    blobs = [to_tensor(rgb).numpy() for _, rgb in images]
    parity = check_parity(reference, onnx_path, blobs, tol=tol)
    log(f"{name}: exported {onnx_path} ({os.path.getsize(onnx_path) / 1e6:.1f} MB, {stripped} Identity "
        f"nodes stripped); parity max |softmax diff| {parity['max_abs_diff']:.3g} on {parity['n_inputs']} "
        f"inputs (tol {tol:g}); batches {parity['batch_diffs']} -> max_batch {parity['max_batch']}")
    if "error" in parity:
        log(f"{name}: {parity['error']}")
    if not parity["ok"]:
        if os.path.exists(card_path):
            os.remove(card_path)  # a card left from an earlier export would describe another file
        return None, parity
    card = make_card(name, arch, onnx_path, parity["max_batch"], parity, training, metrics)
    with open(card_path, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    return card, parity


def load_checkpoint_model(path, arch=None):
    """(arch, model in eval mode at its trained size, checkpoint dict) from a train.py checkpoint or an
    ONNX file this script wrote."""
    ck = onnx_import.load_checkpoint(path, arch=arch)  # an earlier export is read back, checked against cv2.dnn
    arch = arch or ck["arch"]
    if ck.get("arch") and ck["arch"] != arch:
        raise ValueError(f"{path} holds a {ck['arch']} model, not {arch}")
    model = build_model(arch, img_size=ck.get("img_size", EXPORT_SIZE))
    load_weights(model, ck["model"])
    return arch, model.eval(), ck


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--arch", choices=ARCHS, help="default: the checkpoint's")
    p.add_argument("--out", required=True, help="ONNX path, e.g. models/resnet18.onnx")
    p.add_argument("--card", help="model card path (default: --out with .json)")
    p.add_argument("--name", help="model name in the card (default: file stem)")
    p.add_argument("--parity-images", nargs="*", default=[],
                   help="crop files or directories (e.g. DATA/val); synthetic inputs fill up to 8")
    p.add_argument("--parity-count", type=int, default=16, help="at most this many parity crops")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--vit-form", choices=("batched", "plain"), default="batched",
                   help="ViT export form: batched runs any batch in cv2.dnn; plain is batch 1 only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--native-size", action="store_true",
                   help="keep the size the model was trained at (e.g. 112) and put a fixed 2x2 average pool in "
                        "front, so the file still takes the product's 224x224 crops; default: resize the model to 224")
    args = p.parse_args(argv)
    set_threads(args.threads)

    arch, model, ck = load_checkpoint_model(args.checkpoint, args.arch)
    reference = model
    trained = ck.get("img_size", EXPORT_SIZE)
    if args.native_size and trained != EXPORT_SIZE:
        if EXPORT_SIZE % trained:
            raise ValueError(f"--native-size needs {EXPORT_SIZE} to be a multiple of the trained size {trained}")
        # A 224 crop averaged over k x k pixels is exactly the INTER_AREA resize the model was trained on.
        k = EXPORT_SIZE // trained
        inner = export_ready(arch, model, trained, batch_agnostic=args.vit_form == "batched")
        module = torch.nn.Sequential(torch.nn.AvgPool2d(k), inner).eval()
        reference = torch.nn.Sequential(torch.nn.AvgPool2d(k), model).eval()
        if ck.get("training") is not None:
            ck["training"]["input_note"] = f"trained at {trained} px; the network averages {k}x{k} pixels of the 224 px crop first"
    else:
        if isinstance(model, VisionTransformer):
            reference = copy.deepcopy(model)
            reference.set_img_size(EXPORT_SIZE)  # bicubic pos-embed interpolation to the 14x14 grid
        module = export_ready(arch, reference, EXPORT_SIZE, batch_agnostic=args.vit_form == "batched")
    name = args.name or os.path.splitext(os.path.basename(args.out))[0]
    card_path = args.card or os.path.splitext(args.out)[0] + ".json"
    images = parity_inputs(args.parity_images, limit=max(MIN_PARITY_INPUTS, args.parity_count))
    card, parity = export_and_check(reference, module, args.out, card_path, name, arch, images,
                                    ck.get("training"), ck.get("metrics"), tol=args.tol)
    if card is None:
        print(f"PARITY FAILED: {parity['max_abs_diff']:.3g} > {args.tol:g}; no card written", file=sys.stderr)
        return 1
    print(f"wrote {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
