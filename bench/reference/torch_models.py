"""PyTorch modules with the weights of a dfmon ONNX file, for the reference side of `dfmon bench`.

The bundled models ship as ONNX only, so the reference rebuilds the ordinary PyTorch module of the
architecture (training/models.py) and fills it with the ONNX initializers, matched by graph order and
checked by shape:
  * conv nets (resnet18, the tiny test conv net): every Conv in graph order -> every nn.Conv2d in module
    order (the export folded each BatchNorm into its Conv, so BatchNorms become Identity and the Convs
    get the folded bias); the final Gemm -> the last nn.Linear;
  * resnet18_srm(_cs) / vit_tiny_srm: the first Conv must be the fixed SRM filters; the rest as above (the
    ViT's conv stem like a conv net, its patch embedding and blocks like a ViT);
  * ViTs (vit_tiny, the tiny test ViT): the export form's separate q/k/v/proj/fc1/fc2 Linears (Gemms
    in the batched form, MatMuls in the plain one) -> the training form's fused qkv/proj/fc1/fc2 (LayerNorm affine is already folded into the following
    Linear, so the LayerNorms get gamma=1, beta=0; the attention scale folded into q is divided out).
So PyTorch runs the model as a PyTorch user would (nn.LayerNorm, fused qkv, torchvision ResNet), not
an interpretation of the ONNX graph. `verify_against_opencv` then compares softmax outputs with cv2.dnn
on real crops; callers refuse to time a reference whose difference exceeds the tolerance.

A training checkpoint (train.py's RUN/best.pt) can be given instead: then export.load_checkpoint_model
builds the module, exactly as export.py did before exporting.

Import training/common.py (via `import_training`) before torch: it sets OMP_WAIT_POLICY=PASSIVE.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.normpath(os.path.join(HERE, "..", "..", "training"))


def import_training():
    if TRAINING not in sys.path:
        sys.path.insert(0, TRAINING)
    import common  # noqa: F401  (first: OpenMP wait policy before torch loads)
    return common


import_training()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from onnx import numpy_helper, shape_inference  # noqa: E402

import models as train_models  # noqa: E402  (training/models.py)


class Unsupported(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# ONNX graph access

class Graph:
    def __init__(self, path):
        self.model = onnx.load(path)
        g = self.model.graph
        self.nodes = list(g.node)
        self.inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.consts = dict(self.inits)
        for n in self.nodes:
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = numpy_helper.to_array(a.t)
        self.consumers = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def of(self, op):
        return [n for n in self.nodes if n.op_type == op]

    def init_input(self, node):
        """(index, array) of the first initializer input of a node, or (None, None)."""
        for k, i in enumerate(node.input):
            if i in self.inits:
                return k, self.inits[i]
        return None, None


def count_flops(path):
    """FLOPs (2 x multiply-adds) of Conv, MatMul and Gemm nodes for one input of the graph's static
    shape, from ONNX shape inference. Element-wise ops, softmax and pooling are not counted."""
    model = shape_inference.infer_shapes(onnx.load(path))
    g = model.graph
    shapes = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for i in g.initializer:
        shapes[i.name] = list(i.dims)
    macs = 0
    unknown = 0
    for n in g.node:
        try:
            if n.op_type == "Conv":
                w = shapes[n.input[1]]  # (Cout, Cin / group, kh, kw): grouping is already in w[1]
                out = shapes[n.output[0]]
                macs += int(np.prod(out)) * (w[1] * int(np.prod(w[2:])))
            elif n.op_type == "MatMul":
                a = shapes[n.input[0]]
                out = shapes[n.output[0]]
                macs += int(np.prod(out)) * a[-1]
            elif n.op_type == "Gemm":
                a = shapes[n.input[0]]
                out = shapes[n.output[0]]
                trans_a = any(x.name == "transA" and x.i for x in n.attribute)
                macs += int(np.prod(out)) * (a[0] if trans_a else a[-1])
        except (KeyError, TypeError, IndexError):
            unknown += 1
    return 2.0 * macs, unknown


# ------------------------------------------------------------------------------------------------
# Conv nets

def _replace_batchnorm(module):
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.Identity())
        else:
            _replace_batchnorm(child)


@torch.no_grad()
def _fill_convnet(module, g, convs=None, head=True):
    convs = g.of("Conv") if convs is None else convs
    mconvs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != len(mconvs):
        raise Unsupported(f"{len(convs)} Conv nodes in the ONNX graph, {len(mconvs)} Conv2d in the module")
    for node, conv in zip(convs, mconvs):
        w = g.inits.get(node.input[1])
        b = g.inits.get(node.input[2]) if len(node.input) > 2 else None
        if w is None or tuple(w.shape) != tuple(conv.weight.shape):
            raise Unsupported(f"conv weight shape {None if w is None else w.shape} != {tuple(conv.weight.shape)}")
        conv.weight.copy_(torch.from_numpy(w.copy()))
        bias = torch.from_numpy(b.copy()) if b is not None else torch.zeros(w.shape[0])
        conv.bias = nn.Parameter(bias)
    _replace_batchnorm(module)
    if not head:
        return module.eval()
    gemms = g.of("Gemm")
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if len(gemms) != 1 or len(linears) != 1:
        raise Unsupported(f"expected one Gemm and one Linear, got {len(gemms)} and {len(linears)}")
    node, lin = gemms[0], linears[0]
    w = g.inits[node.input[1]]
    if not g.attr(node, "transB", 0):
        w = w.T
    if tuple(w.shape) != tuple(lin.weight.shape):
        raise Unsupported(f"head weight shape {w.shape} != {tuple(lin.weight.shape)}")
    lin.weight.copy_(torch.from_numpy(np.array(w, np.float32)))
    lin.bias.copy_(torch.from_numpy(g.inits[node.input[2]].copy()))
    return module.eval()


def _tiny_conv():
    from make_tiny_onnx import TinyConvNet  # training/make_tiny_onnx.py
    return TinyConvNet()


# ------------------------------------------------------------------------------------------------
# ViTs

def _linear_after(g, matmul):
    """(W (out, in), b (out,)) of a Linear exported as MatMul(x, W^T) [+ Add(bias)]."""
    w = g.inits[matmul.input[1]].T
    b = np.zeros(w.shape[0], np.float32)
    for c in g.consumers.get(matmul.output[0], []):
        if c.op_type == "Add":
            _, arr = g.init_input(c)
            if arr is not None and arr.shape == (w.shape[0],):
                b = arr
    return np.ascontiguousarray(w), b


def _gemm_linear(g, gemm):
    """(W (out, in), b (out,)) of a Linear exported as Gemm(x, W, b) (transB=1) or Gemm(x, W^T, b)."""
    w = g.inits[gemm.input[1]]
    if not g.attr(gemm, "transB", 0):
        w = w.T
    b = g.inits[gemm.input[2]] if len(gemm.input) > 2 else np.zeros(w.shape[0], np.float32)
    return np.ascontiguousarray(w), b


def _block_linears(g):
    """[(node, (W, b))] of the transformer blocks' Linears in graph order: the batched export form's
    Gemms on (B*T, C) (every Gemm but the last, which is the head), or the older form's MatMul(x, W^T)
    [+ Add(bias)] on (B, T, C) (skipping LayerNorm's (C, 1) averaging MatMuls)."""
    gemms = g.of("Gemm")
    if len(gemms) > 1:
        return [(n, _gemm_linear(g, n)) for n in gemms[:-1]]
    lin = [n for n in g.of("MatMul") if n.input[1] in g.inits and g.inits[n.input[1]].shape[1] != 1]
    return [(n, _linear_after(g, n)) for n in lin]


def _heads_of(g, matmul):
    """Number of heads from the Reshape (B, T, heads, d) that follows the q projection."""
    frontier = [matmul.output[0]]
    for _ in range(3):
        nxt = []
        for name in frontier:
            for c in g.consumers.get(name, []):
                if c.op_type == "Reshape":
                    shape = g.consts.get(c.input[1])
                    if shape is not None and len(shape) == 4:
                        return int(shape[2])
                nxt += list(c.output)
        frontier = nxt
    raise Unsupported("cannot find the attention head count (Reshape to 4-D after q)")


@torch.no_grad()
def _build_vit(g, img_size, num_classes, conv=None, in_channels=3):
    conv = g.of("Conv")[0] if conv is None else conv
    pw, pb = g.inits[conv.input[1]], g.inits[conv.input[2]]
    dim, patch = pw.shape[0], pw.shape[2]
    grid = img_size // patch
    n_patch = grid * grid
    patch_pos = cls_pos = None
    for arr in g.inits.values():
        if arr.ndim >= 2 and arr.shape[-1] == dim and arr.size == n_patch * dim:
            patch_pos = arr.reshape(n_patch, dim)
        elif arr.ndim >= 2 and arr.shape[-1] == dim and arr.size == dim:
            cls_pos = arr.reshape(dim)
    if patch_pos is None or cls_pos is None:
        raise Unsupported("cannot find the position embeddings")
    lin = _block_linears(g)
    if not lin or len(lin) % 6:
        raise Unsupported(f"{len(lin)} block Linears: not 6 per transformer block")
    depth = len(lin) // 6
    mlp_dim = lin[4][1][0].shape[0]
    heads = _heads_of(g, lin[0][0])
    model = train_models.VisionTransformer(img_size=img_size, patch=patch, dim=dim, depth=depth, heads=heads,
                                           mlp_dim=mlp_dim, num_classes=num_classes, drop_path=0.0,
                                           in_channels=in_channels)
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # noqa: E731
    model.patch_embed.weight.copy_(t(pw))
    model.patch_embed.bias.copy_(t(pb))
    model.cls_token.copy_(t(cls_pos).reshape(1, 1, dim))
    model.pos_embed.copy_(torch.cat([torch.zeros(1, 1, dim), t(patch_pos)[None]], dim=1))
    for i, blk in enumerate(model.blocks):
        (wq, bq), (wk, bk), (wv, bv), (wp, bp), (w1, b1), (w2, b2) = [wb for _, wb in lin[6 * i:6 * i + 6]]
        for w, shape in ((wq, (dim, dim)), (wk, (dim, dim)), (wv, (dim, dim)), (wp, (dim, dim)),
                         (w1, (mlp_dim, dim)), (w2, (dim, mlp_dim))):
            if w.shape != shape:
                raise Unsupported(f"block {i}: weight shape {w.shape} != {shape}")
        s = blk.attn.scale
        blk.attn.qkv.weight.copy_(t(np.concatenate([wq / s, wk, wv])))
        blk.attn.qkv.bias.copy_(t(np.concatenate([bq / s, bk, bv])))
        blk.attn.proj.weight.copy_(t(wp))
        blk.attn.proj.bias.copy_(t(bp))
        blk.fc1.weight.copy_(t(w1))
        blk.fc1.bias.copy_(t(b1))
        blk.fc2.weight.copy_(t(w2))
        blk.fc2.bias.copy_(t(b2))
        for ln in (blk.norm1, blk.norm2):
            ln.weight.fill_(1.0)
            ln.bias.zero_()
    model.norm.weight.fill_(1.0)
    model.norm.bias.zero_()
    gemm = g.of("Gemm")[-1]
    hw = g.inits[gemm.input[1]]
    if not g.attr(gemm, "transB", 0):
        hw = hw.T
    model.head.weight.copy_(t(hw))
    model.head.bias.copy_(t(g.inits[gemm.input[2]]))
    return model.eval()


# ------------------------------------------------------------------------------------------------
# Noise-residual models (resnet18_srm, vit_tiny_srm): a fixed grouped SRM convolution in front

@torch.no_grad()
def _build_residual(g, arch, classes):
    module = train_models.build_model(arch, num_classes=classes)
    first = g.of("Conv")[0]  # the fixed filters, not trained: the file must hold the same constants
    w = g.inits.get(first.input[1])
    if w is None or not module.residual.matches(w, g.attr(first, "group", 1)):
        raise Unsupported("the first Conv is not the SRM noise-residual filter bank")
    convs = g.of("Conv")[1:]
    if arch.startswith("resnet18_srm"):
        _fill_convnet(module.net, g, convs)
        return module.eval()
    n_stem = sum(isinstance(m, nn.Conv2d) for m in module.stem)
    if len(convs) != n_stem + 1:
        raise Unsupported(f"{len(convs)} Conv nodes after the residual, want {n_stem} stem + 1 patch embedding")
    _fill_convnet(module.stem, g, convs[:n_stem], head=False)
    module.vit = _build_vit(g, module.vit.img_size, classes, conv=convs[n_stem],
                            in_channels=module.vit.patch_embed.in_channels)
    return module.eval()


# ------------------------------------------------------------------------------------------------
# Entry points

def _input_pool(g):
    """k when the graph starts with a fixed k x k average pool (export.py --native-size: a model trained
    at 112 px behind AvgPool2d(2) so that it takes 224 px crops), else 1. Only zero Pads, Constants and
    that pool may come before the first Conv."""
    k = 1
    for n in g.nodes:
        if n.op_type == "Conv":
            return k
        if n.op_type == "Constant":
            continue
        if n.op_type == "Pad":
            pads = g.consts.get(n.input[1]) if len(n.input) > 1 else g.attr(n, "pads")
            if pads is not None and not np.any(np.asarray(pads)):
                continue
        if n.op_type == "AveragePool" and k == 1:
            ks, st = list(g.attr(n, "kernel_shape") or []), list(g.attr(n, "strides") or [])
            pads = g.attr(n, "pads")
            if len(ks) == 2 and ks[0] == ks[1] and ks == st and not any(pads or []):
                k = int(ks[0])
                continue
        raise Unsupported(f"unexpected {n.op_type} node before the first Conv")
    return k


def load_reference(onnx_path, card, checkpoint=None):
    """(module in eval mode, description) for a model file and its card."""
    k = _input_pool(Graph(onnx_path))
    module, how = _load_reference(onnx_path, card, checkpoint, k)
    if k > 1:
        return nn.Sequential(nn.AvgPool2d(k), module).eval(), f"AvgPool2d({k}) + {how}"
    return module, how


def _load_reference(onnx_path, card, checkpoint, pool):
    if checkpoint:
        import export  # training/export.py
        arch, model, _ = export.load_checkpoint_model(checkpoint)
        if isinstance(model, train_models.VisionTransformer):
            model.set_img_size(int(card["input"]["width"]) // pool)
        return model.eval(), f"checkpoint {checkpoint} ({arch})"
    g = Graph(onnx_path)
    arch = card.get("architecture", "")
    size = int(card["input"]["width"]) // pool
    classes = len(card["output"]["labels"])
    if arch in train_models.RESIDUAL:
        return _build_residual(g, arch, classes), f"ONNX weights -> models.{arch}"
    is_vit = bool(g.of("Softmax")) and bool(g.of("Conv"))
    if is_vit:
        conv = g.of("Conv")[0]
        k = g.attr(conv, "kernel_shape")
        st = g.attr(conv, "strides")
        if not (k and st and list(k) == list(st)):
            raise Unsupported(f"{arch}: graph has Softmax but no patch-embedding Conv")
        return _build_vit(g, size, classes), f"ONNX weights -> models.VisionTransformer ({arch})"
    if arch == "resnet18":
        return _fill_convnet(train_models.resnet18(classes), g), "ONNX weights -> torchvision resnet18"
    if arch == "tiny_conv":
        return _fill_convnet(_tiny_conv(), g), "ONNX weights -> make_tiny_onnx.TinyConvNet"
    raise Unsupported(f"architecture {arch!r} is not known to the PyTorch reference (give a checkpoint)")


def preprocess(crops_bgr, card):
    """NCHW float tensor exactly as the C++ make_blob builds it (INTER_AREA resize, colour order,
    x = (pixel * scale - mean) / std)."""
    inp = card["input"]
    w, h = int(inp["width"]), int(inp["height"])
    scale = float(inp.get("scale", 1.0 / 255.0))
    mean = np.asarray(inp["mean"], np.float32)
    std = np.asarray(inp["std"], np.float32)
    rgb = inp.get("color", "RGB") == "RGB"
    out = np.empty((len(crops_bgr), 3, h, w), np.float32)
    for i, c in enumerate(crops_bgr):
        if c.shape[1] != w or c.shape[0] != h:
            c = cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA)
        if rgb:
            c = cv2.cvtColor(c, cv2.COLOR_BGR2RGB)
        x = (c.astype(np.float32) * scale - mean) / std
        out[i] = x.transpose(2, 0, 1)
    return torch.from_numpy(out)


def p_fake(logits, card):
    fake = int(card["output"].get("fake_index", 1))
    if card["output"].get("type", "logits") == "logits":
        return torch.softmax(logits, dim=1)[:, fake]
    return logits[:, fake]


def softmax_np(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def verify_against_opencv(module, onnx_path, card, crops_bgr):
    """Max |softmax difference| between the module and cv2.dnn on the crops (one at a time)."""
    net = cv2.dnn.readNetFromONNX(onnx_path)
    blob = preprocess(crops_bgr, card)
    with torch.no_grad():
        ref = softmax_np(module(blob).numpy())
    outs = []
    for i in range(blob.shape[0]):
        net.setInput(blob[i:i + 1].numpy())
        outs.append(net.forward().reshape(1, -1))
    return float(np.abs(softmax_np(np.concatenate(outs)) - ref).max())


def write_result(path, obj):
    """Writes a reference's result document; exit code 0 when it says ok."""
    import json
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    return 0 if obj.get("ok") else 1


def read_card(models_dir, name):
    import json
    with open(os.path.join(models_dir, name + ".json")) as f:
        card = json.load(f)
    return card, os.path.join(models_dir, card["file"])
