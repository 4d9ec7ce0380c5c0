#!/usr/bin/python3
"""Reads the weights of an ONNX file written by export.py back into a trainable PyTorch model.

A clone of the repository has the bundled models/*.onnx but not the PyTorch checkpoints they came from,
so fine-tuning the bundled models (`train.py --init models/resnet18.onnx`) starts here.

  /usr/bin/python3 training/onnx_import.py models/resnet18.onnx --out runs/resnet18_from_onnx.pt

What the export folded away is restored as the identity, so the imported model computes what the file
computes (checked against cv2.dnn on the same inputs; the import fails beyond --tol):
  * ResNet-18: each BatchNorm was folded into its convolution. The BatchNorm comes back computing
    "x + conv bias" in eval mode. With calibration crops its statistics are those of the crops and its
    affine weights undo them, so in training mode (batch statistics) it starts near the same function
    instead of re-normalising every layer.
  * resnet18_srm(_cs), vit_tiny_srm: the fixed noise-residual filters are checked, not loaded; the
    convolutions (and vit_tiny_srm's stem) come back as above, the transformer as below.
  * ViT-Tiny: LayerNorm gamma/beta were folded into the following Linear, the attention scale into q,
    the class token into its position embedding. They come back as gamma 1, beta 0, scale divided out,
    a zero class-token position.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (first: sets the OpenMP wait policy before torch loads)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from models import ARCHS, ResidualViT, VisionTransformer, build_model  # noqa: E402

EXPORT_SIZE = 224


def _card(onnx_path):
    path = os.path.splitext(onnx_path)[0] + ".json"
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _pool_factor(graph):
    """k of the fixed k x k average pool that --native-size exports put before the first convolution."""
    k = 1
    for n in graph.node:
        if n.op_type == "Conv":
            break
        if n.op_type == "AveragePool":
            for a in n.attribute:
                if a.name == "kernel_shape":
                    k *= int(a.ints[0])
    return k


def _guess_arch(inits, prefix):
    w = inits.get(prefix + "patch_embed.weight")
    if w is not None:
        return "vit_tiny_fullres" if w.shape[-1] == 32 else "vit_tiny"
    convs = [v for k, v in inits.items() if v.ndim == 4]
    if convs and max(c.shape[-1] for c in convs) == 14:
        return "resnet18_fullres"
    return "resnet18"


def _conv_bn_state(model, nodes, inits, img_size, calib, head=True):
    """Loads the folded convolutions `nodes` (the file's Conv nodes, in graph order) into the nn.Conv2d
    modules of `model` in the order its forward runs them, and restores the BatchNorm that follows
    each one; with head, also the final `fc` Linear (a torchvision ResNet's)."""
    mods, order = dict(model.named_modules()), []
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: order.append(name))
             for name, m in mods.items() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, img_size, img_size))
    for h in hooks:
        h.remove()
    conv_order = [n for n in order if isinstance(mods[n], nn.Conv2d)]
    if len(nodes) != len(conv_order):
        raise ValueError(f"{len(nodes)} Conv nodes in the file, {len(conv_order)} convolutions in the model")

    def bn_of(conv_name):  # the BatchNorm that runs right after the convolution
        k = order.index(conv_name) + 1
        if k >= len(order) or not isinstance(mods[order[k]], nn.BatchNorm2d):
            raise ValueError(f"no BatchNorm after {conv_name}")
        return mods[order[k]]

    biases = {}
    with torch.no_grad():
        for name, node in zip(conv_order, nodes):
            conv, bn = mods[name], bn_of(name)
            w = inits[node.input[1]]
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ValueError(f"Conv {node.name or node.input[1]}: weight {tuple(w.shape)}, "
                                 f"model's {name} has {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w))
            b = torch.from_numpy(inits[node.input[2]]) if len(node.input) > 2 else torch.zeros(w.shape[0])
            # Identity BatchNorm in eval mode: (x - 0) / sqrt((1 - eps) + eps) * 1 + b.
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            biases[bn] = b
        if head:
            fc_w = next(v for k, v in inits.items() if k.endswith("fc.weight"))
            fc_b = next(v for k, v in inits.items() if k.endswith("fc.bias"))
            fc = getattr(model, "net", model).fc
            fc.weight.copy_(torch.from_numpy(fc_w))
            fc.bias.copy_(torch.from_numpy(fc_b))

    if calib is not None and len(calib):
        # Statistics of each BatchNorm's input (the bias-free convolution output) over the crops, then
        # gamma = std, beta = mean + b: eval mode still computes x + b, training mode starts close to it.
        stats = {}
        hooks = [bn.register_forward_pre_hook(
            lambda m, i: stats.__setitem__(m, (i[0].mean((0, 2, 3)), i[0].var((0, 2, 3), unbiased=False))))
            for bn in biases]
        with torch.no_grad():
            model(calib)
            for h in hooks:
                h.remove()
            for bn, b in biases.items():
                mean, var = stats[bn]
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
                bn.weight.copy_(torch.sqrt(var + bn.eps))
                bn.bias.copy_(mean + b)
    return model.state_dict()


def _vit_state(model, inits, prefix):
    """VisionTransformer state from ExportViT weights (see models.ExportViT / _fold_ln_linear)."""
    def t(name):
        return torch.from_numpy(inits[prefix + name])

    dim = model.dim
    state = model.state_dict()
    patch_pos = t("patch_pos").reshape(-1, dim)
    if patch_pos.shape[0] + 1 != state["pos_embed"].shape[1]:
        raise ValueError(f"{patch_pos.shape[0]} position embeddings in the file, the model at "
                         f"{model.img_size} px has {state['pos_embed'].shape[1] - 1}")
    state["patch_embed.weight"], state["patch_embed.bias"] = t("patch_embed.weight"), t("patch_embed.bias")
    state["cls_token"] = t("cls_pos").reshape(1, 1, dim)  # class token + its position, position now 0
    state["pos_embed"] = torch.cat([torch.zeros(1, 1, dim), patch_pos[None]], dim=1)
    for i, blk in enumerate(model.blocks):
        p, scale = f"blocks.{i}.", blk.attn.scale
        state[p + "attn.qkv.weight"] = torch.cat([t(p + "q.weight") / scale, t(p + "k.weight"), t(p + "v.weight")])
        state[p + "attn.qkv.bias"] = torch.cat([t(p + "q.bias") / scale, t(p + "k.bias"), t(p + "v.bias")])
        for name in ("proj", "fc1", "fc2"):
            target = p + ("attn." if name == "proj" else "") + name
            state[target + ".weight"], state[target + ".bias"] = t(p + name + ".weight"), t(p + name + ".bias")
        for ln in ("norm1", "norm2"):
            state[p + ln + ".weight"] = torch.ones(dim)
            state[p + ln + ".bias"] = torch.zeros(dim)
    state["norm.weight"], state["norm.bias"] = torch.ones(dim), torch.zeros(dim)
    state["head.weight"], state["head.bias"] = t("head.weight"), t("head.bias")
    model.load_state_dict(state)
    return model.state_dict()


def checkpoint_from_onnx(path, arch=None, calib=None, tol=1e-4, check_inputs=8):
    """A train.py-style checkpoint dict {arch, img_size, model, training, metrics, imported_from} from an
    ONNX file written by export.py (its card NAME.json, if present, names the architecture).

    calib: ResNet BatchNorm statistics from an NCHW batch of normalised crops at the model's own size, or
    from a seed-layout dataset directory (calibration_batch at that size; read only for a ResNet).
    Raises ValueError when the file is not such an export or the imported model disagrees with cv2.dnn
    by more than tol (softmax) on check_inputs inputs (0 = no check)."""
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i).copy() for i in m.graph.initializer}
    prefix = "1." if any(k.startswith("1.") for k in inits) else ""
    card = _card(path)
    arch = arch or card.get("architecture") or _guess_arch(inits, prefix)
    if arch not in ARCHS:
        raise ValueError(f"{path}: unknown architecture {arch!r}")
    k = _pool_factor(m.graph)
    img_size = EXPORT_SIZE // k
    model = build_model(arch, img_size=img_size)
    nodes = [n for n in m.graph.node if n.op_type == "Conv"]
    try:
        if isinstance(model, VisionTransformer):
            state = _vit_state(model, inits, prefix)
        else:
            if isinstance(calib, str):
                calib = calibration_batch(calib, img_size)
            if hasattr(model, "residual"):  # the fixed noise-residual filters come first, not trained
                groups = next((a.i for a in nodes[0].attribute if a.name == "group"), 1)
                if not model.residual.matches(inits[nodes[0].input[1]], groups):
                    raise ValueError("its first convolution is not the SRM noise-residual filter bank")
                nodes = nodes[1:]
            if isinstance(model, ResidualViT):
                n_stem = sum(isinstance(q, nn.Conv2d) for q in model.stem)
                _conv_bn_state(model.stem_only(), nodes[:n_stem], inits, img_size, calib, head=False)
                _vit_state(model.vit, inits, "2.")  # export_ready: Sequential(residual, stem, ExportViT)
                state = model.state_dict()
            else:
                state = _conv_bn_state(model, nodes, inits, img_size, calib)
    except (KeyError, StopIteration) as e:
        raise ValueError(f"{path}: not a {arch} file from export.py (missing weight {e})") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None

    parity = None
    if check_inputs:
        import export  # late: export imports this module to read .onnx checkpoints
        reference = nn.Sequential(nn.AvgPool2d(k), model) if k > 1 else model
        # The synthetic recipes plus noise crops: every channel and layer gets non-trivial input.
        rng = np.random.default_rng(0)
        images = [rgb for _, rgb in export.parity_inputs(None, limit=check_inputs)]
        images += [rng.integers(0, 256, (EXPORT_SIZE, EXPORT_SIZE, 3), dtype=np.uint8) for _ in range(2)]
        blobs = [export.to_tensor(rgb).numpy() for rgb in images]
        parity = export.check_parity(reference, path, blobs, tol=tol, batch_trials=())
        if not parity["ok"]:
            raise ValueError(f"{path}: the imported {arch} differs from cv2.dnn by "
                             f"{parity['max_abs_diff']:.3g} > {tol:g} ({parity.get('error', 'softmax')})")
    return {"arch": arch, "img_size": img_size, "model": state, "training": card.get("training"),
            "metrics": card.get("metrics"), "imported_from": os.path.abspath(path),
            "import_parity": parity and parity["max_abs_diff"]}


def load_checkpoint(path, arch=None, calib=None):
    """train.py checkpoint (.pt) or export.py ONNX file (read back: checkpoint_from_onnx), as a checkpoint
    dict."""
    if path.lower().endswith(".onnx"):
        return checkpoint_from_onnx(path, arch=arch, calib=calib)
    return torch.load(path, map_location="cpu")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", help="an ONNX file written by export.py, e.g. models/resnet18.onnx")
    p.add_argument("--out", required=True, help="checkpoint path (.pt) to write")
    p.add_argument("--arch", choices=ARCHS, help="default: the card's, else guessed from the weights")
    p.add_argument("--calib", help="seed-layout dataset: BatchNorm statistics from up to 256 of its train crops")
    p.add_argument("--tol", type=float, default=1e-4)
    args = p.parse_args(argv)
    common.set_threads(2)
    try:
        ck = checkpoint_from_onnx(args.onnx, arch=args.arch, calib=args.calib, tol=args.tol)
    except ValueError as e:
        print(f"onnx_import: {e}", file=sys.stderr)
        return 1
    torch.save(ck, args.out)
    print(f"wrote {args.out} ({ck['arch']} at {ck['img_size']} px; max |softmax diff| to cv2.dnn "
          f"{ck['import_parity']:.3g}, tol {args.tol:g})")
    return 0


def calibration_batch(root, size, n=256):
    """Up to n train crops of a seed-layout dataset (both classes, evenly spaced), as train.py's val
    loader reads them at size."""
    from dataset import FaceCrops
    crops = FaceCrops(root, "train", size, train=False)
    idx = np.unique(np.linspace(0, len(crops) - 1, min(n, len(crops))).round().astype(int))
    return torch.stack([crops[int(i)][0] for i in idx])


if __name__ == "__main__":
    sys.exit(main())
