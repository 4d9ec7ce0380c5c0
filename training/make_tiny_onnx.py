#!/usr/bin/python3
"""Writes tiny 2-class ONNX models + cards for the C++ plumbing tests (no training, seeded weights).

  /usr/bin/python3 training/make_tiny_onnx.py --out DIR

  tiny_a.onnx  small conv net (conv/BN/ReLU x3, global average pool, linear); runs any batch (max_batch 0)
  tiny_b.onnx  2-block ViT in the plain export form (batch-1 class-token constant): max_batch 1
  expected.json  PyTorch softmax of each model on the synthetic inputs described in it

Both go through export.py's export / Identity-strip / parity / card code, so the cards are real.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (first: sets the OpenMP wait policy before torch loads)

import torch
import torch.nn as nn

from common import LABELS, MEAN, SCALE, STD, set_threads  # noqa: E402
from dataset import to_tensor  # noqa: E402
from export import (EXPORT_SIZE, SYNTHETIC_RECIPES, export_and_check, render_recipe,  # noqa: E402
                    softmax)
from models import VisionTransformer, to_export_form  # noqa: E402


class TinyConvNet(nn.Module):
    def __init__(self):
        super().__init__()

        def cbr(cin, cout, k, s):
            return [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(*cbr(3, 8, 5, 4), *cbr(8, 16, 3, 2), *cbr(16, 32, 3, 2),
                                      nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


@torch.no_grad()
def _randomise(model, seed):
    """Seeded weights with spread-out outputs, so the expected probabilities differ between inputs
    (default inits give ~0.5 everywhere, which would not catch a preprocessing bug)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.ndim > 1:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        elif name.endswith("weight"):  # 1-D weights are BatchNorm/LayerNorm gains
            p.copy_(0.5 + torch.rand(p.shape, generator=g))
        else:
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    for m in model.modules():  # non-trivial BatchNorm statistics so BN folding is exercised
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()


@torch.no_grad()
def _spread_head(model, head, blobs, spread=2.0):
    """Rescales the 2-class head so the logit margin over `blobs` has mean 0 and std `spread`:
    random features share a large common component that would otherwise push every input to one class."""
    feats = []
    hook = head.register_forward_hook(lambda m, inp, out: feats.append(inp[0]))
    model(blobs)
    hook.remove()
    margin = feats[0] @ (head.weight[1] - head.weight[0])
    gain = spread / float(margin.std())
    head.weight.mul_(gain)
    head.bias.copy_(torch.tensor([0.0, -float(margin.mean()) * gain]))
    return model


def build_tiny(blobs, seed=1234):
    """{name: (arch, reference model, module to export)}."""
    torch.manual_seed(seed)
    conv = _randomise(TinyConvNet(), seed)
    _spread_head(conv, conv.fc, blobs)
    vit = _randomise(VisionTransformer(img_size=EXPORT_SIZE, patch=16, dim=32, depth=2, heads=2, mlp_dim=64,
                                       drop_path=0.0), seed + 1)
    _spread_head(vit, vit.head, blobs)
    return {"tiny_a": ("tiny_conv", conv, conv),
            "tiny_b": ("tiny_vit", vit, to_export_form(vit, batch_agnostic=False))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    set_threads(2)
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    images = [(r["name"], render_recipe(r)) for r in SYNTHETIC_RECIPES]
    blobs = torch.stack([to_tensor(rgb) for _, rgb in images])
    training = {"data": "none (seeded random weights)", "recipe": "make_tiny_onnx.py, for C++ plumbing tests",
                "epochs": 0, "images_seen": 0, "wall_min": 0, "seed": args.seed}
    expected = {
        "schema": "dfmon.tiny_expected/1",
        "note": ("inputs are uint8 HxWx3 RGB images built from the recipes (integer division; x = column, "
                 "y = row): constant: every pixel = rgb; gradient: R = x*255//(W-1), G = y*255//(H-1), "
                 "B = (x+y)*255//(W+H-2); checker: rgb1 where (x//cell + y//cell) is odd, else rgb0. "
                 "Convert to BGR before handing them to code that expects BGR crops. Preprocessing is the "
                 "card's: x = (pixel*scale - mean[c]) / std[c]. probs are PyTorch softmax outputs in label "
                 "order; compare with tolerance."),
        "tolerance": 1e-4,
        "width": EXPORT_SIZE, "height": EXPORT_SIZE,
        "preprocessing": {"color": "RGB", "scale": SCALE, "mean": list(MEAN), "std": list(STD)},
        "labels": list(LABELS),
        "inputs": [dict(r) for r in SYNTHETIC_RECIPES],
        "models": {},
    }
    failed = False
    for name, (arch, reference, module) in build_tiny(blobs, args.seed).items():
        onnx_path = os.path.join(args.out, name + ".onnx")
        card, parity = export_and_check(reference, module, onnx_path, os.path.join(args.out, name + ".json"),
                                        name, arch, images, training=training)
        if card is None:
            failed = True
            continue
        with torch.no_grad():
            logits = torch.cat([reference(b[None]) for b in blobs]).numpy()
        expected["models"][name] = {
            "file": os.path.basename(onnx_path), "card": name + ".json", "max_batch": card["input"]["max_batch"],
            "logits": [[round(float(v), 6) for v in row] for row in logits],
            "probs": [[round(float(v), 6) for v in row] for row in softmax(logits)]}
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print(f"wrote tiny models to {args.out} in {time.time() - t0:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
