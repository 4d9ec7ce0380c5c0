"""Detector architectures: torchvision ResNet-18 and ViT-Tiny/16, both trained from scratch, and their
full-resolution forms (`*_fullres`: the 224 px crop at the cost of the 112 px network).

The ViT exists in two forms with the same weights:
  * VisionTransformer: the ordinary training form (nn.LayerNorm, fused qkv, nn.GELU, expand'ed class token);
  * ExportViT: a form built only from ops that OpenCV 4.6 DNN imports and computes correctly
    (see shared/docs/opencv-onnx.md). `to_export_form(model)` maps the weights across.
"""
import math
import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

LN_EPS = 1e-6


# --------------------------------------------------------------------------------------------------
# ResNet-18

def resnet18(num_classes=2):
    m = torchvision.models.resnet18(weights=None)
    m.fc = nn.Linear(512, num_classes)
    return m


def resnet18_fullres(num_classes=2, in_channels=3):
    """ResNet-18 that reads every pixel of the 224 px crop at the cost of a 112 px network.

    A 2x2 average pool (the 112 px models) throws away the finest detail, where blending and
    re-rendering leave their traces. Here the stem convolution itself spans 14x14 pixels with stride 4,
    so its 56x56 output (and everything after it) has the 112 px network's size while each output
    still sees the full-resolution pixels. `fullres_from_pooled` maps a 112 px model onto it exactly."""
    m = resnet18(num_classes)
    m.conv1 = nn.Conv2d(in_channels, 64, kernel_size=14, stride=4, padding=6, bias=False)
    return m


class NoiseResidual(nn.Module):
    """Fixed high-pass filters (three SRM kernels from steganalysis, Fridrich & Kodovsky 2012) applied
    to each colour channel: 9 channels of noise residual in which faces, people and lighting are mostly
    gone and resampling, blending and re-rendering traces remain. Not trained: a learned first layer
    would be free to pass the low frequencies on again."""

    def __init__(self):
        super().__init__()
        kv = torch.tensor([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                           [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]], dtype=torch.float32) / 12.0
        kb = torch.zeros(5, 5)
        kb[1:4, 1:4] = torch.tensor([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=torch.float32) / 4.0
        kh = torch.zeros(5, 5)
        kh[2, 1:4] = torch.tensor([1, -2, 1], dtype=torch.float32) / 2.0
        # Each of the 3 input channels gets all three kernels (grouped convolution, 9 outputs).
        self.register_buffer("weight", torch.stack([kv, kb, kh]).unsqueeze(1).repeat(3, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.weight, padding=2, groups=3)

    def matches(self, weight, groups):
        """Whether an exported convolution (weight array, group count) is this filter bank."""
        return (groups == 3 and tuple(weight.shape) == tuple(self.weight.shape)
                and float(np.abs(weight - self.weight.numpy()).max()) <= 1e-6)


class ResidualResNet(nn.Module):
    """resnet18_srm: the full-resolution ResNet-18 reading only the noise residual of the 224 px crop.

    conv_stem=True (resnet18_srm_cs) replaces the 14x14 stride-4 stem convolution, which alone costs as
    much as the rest of the network (355 M multiply-adds over 9 channels), by two stride-2 3x3
    convolutions (9 -> 32 -> 64 channels, 90 M): the same 56x56 grid and every pixel still in view."""

    def __init__(self, num_classes=2, conv_stem=False):
        super().__init__()
        self.residual = NoiseResidual()
        channels = self.residual.weight.shape[0]
        self.net = resnet18_fullres(num_classes, in_channels=channels)
        if conv_stem:
            self.net.conv1 = nn.Sequential(
                nn.Conv2d(channels, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32),
                nn.ReLU(inplace=True), nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False))

    def forward(self, x):
        return self.net(self.residual(x))


# --------------------------------------------------------------------------------------------------
# ViT, training form

def resize_pos_embed(pos_embed, new_grid, num_prefix=1):
    """Bicubically resamples the patch part of a (1, prefix + g*g, C) position embedding to new_grid².

    Used when training switches from a small image size to 224 and when a checkpoint trained at one
    size is loaded at another. The class-token entry is kept as is."""
    prefix, grid = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    old_grid = int(round(math.sqrt(grid.shape[1])))
    assert old_grid * old_grid == grid.shape[1], "position embedding is not a square grid"
    if old_grid == new_grid:
        return pos_embed.clone()
    c = grid.shape[2]
    grid = grid.reshape(1, old_grid, old_grid, c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=(new_grid, new_grid), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid * new_grid, c).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample; regularises ViTs trained from scratch."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_dim, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class VisionTransformer(nn.Module):
    """ViT with a class token; defaults are ViT-Tiny/16 at 224 px (5.5 M parameters)."""

    def __init__(self, img_size=224, patch=16, dim=192, depth=12, heads=3, mlp_dim=768, num_classes=2,
                 drop_path=0.1, in_channels=3):
        super().__init__()
        self.patch, self.dim, self.depth, self.heads, self.mlp_dim = patch, dim, depth, heads, mlp_dim
        self.num_classes = num_classes
        self.img_size = img_size
        grid = img_size // patch
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        rates = [drop_path * i / max(1, depth - 1) for i in range(depth)]  # deeper blocks drop more
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_dim, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        # Patch embedding as a linear layer over flattened patches (fan-in init).
        w = self.patch_embed.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=math.sqrt(1.0 / w[0].numel()))
        nn.init.zeros_(self.patch_embed.bias)

    def set_img_size(self, img_size):
        """Changes the input size, interpolating the position embedding into a NEW Parameter (autograd
        keeps the old shape of a leaf, so resizing .data in place breaks backward). An optimizer holding
        the old one must be updated: see train.py's switch_size."""
        if img_size % self.patch:
            raise ValueError(f"image size {img_size} is not a multiple of the patch size {self.patch}")
        if img_size != self.img_size:
            self.pos_embed = nn.Parameter(resize_pos_embed(self.pos_embed.detach(), img_size // self.patch))
            self.img_size = img_size

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, 0]))


def vit_tiny(num_classes=2, img_size=224, **kw):
    return VisionTransformer(img_size=img_size, patch=16, dim=192, depth=12, heads=3, mlp_dim=768,
                             num_classes=num_classes, **kw)


def vit_tiny_fullres(num_classes=2, img_size=224, **kw):
    """ViT-Tiny with 32 px patches: at 224 px the same 7x7 tokens as ViT-Tiny/16 at 112 px, but each
    token embeds its 32x32 full-resolution pixels instead of a 2x2-averaged 16x16 patch."""
    return VisionTransformer(img_size=img_size, patch=32, dim=192, depth=12, heads=3, mlp_dim=768,
                             num_classes=num_classes, **kw)


class ResidualViT(nn.Module):
    """vit_tiny_srm: ViT-Tiny reading the noise residual of the 224 px crop through a small convolutional
    stem (three stride-2 3x3 convolutions to 28x28, then 4 px patches: the same 7x7 tokens as the
    shipped ViT). The bundled ViT-Tiny/16, with a linear embedding of 16 px patches, learned little in
    the same CPU time; convolutions before the tokens are the known remedy for small-data ViTs (Xiao et
    al., "Early convolutions help transformers see better", 2021)."""

    STEM = (32, 64, 128)

    def __init__(self, num_classes=2, **kw):
        super().__init__()
        self.residual = NoiseResidual()
        layers, cin = [], self.residual.weight.shape[0]
        for cout in self.STEM:
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
            cin = cout
        self.stem = nn.Sequential(*layers)
        self.vit = VisionTransformer(img_size=28, patch=4, dim=192, depth=12, heads=3, mlp_dim=768,
                                     num_classes=num_classes, in_channels=cin, **kw)

    def forward(self, x):
        return self.vit(self.stem(self.residual(x)))

    def stem_only(self):
        """The residual filters and the stem (sharing this model's modules): the convolutional part."""
        return nn.Sequential(self.residual, self.stem)


# --------------------------------------------------------------------------------------------------
# ViT, export form for OpenCV 4.6

def _layer_norm_plain(x, avg=None):
    """LayerNorm without affine, written out: OpenCV 4.6 lacks LayerNormalization and fails on the Mul by
    a 1-D γ, so γ/β are folded into the Linear that follows.

    avg, a (C, 1) constant of 1/C, selects the batch-agnostic form for (B, T, C) input. OpenCV 4.6
    imports ReduceMean with batch 1 baked in, and a broadcasting Sub/Div as a Scale layer whose
    per-row operand must cover all axes but the first; so tokens are flattened to (1, B*T, C) and the
    means taken as a MatMul (imported as a batch-independent InnerProduct)."""
    if avg is None:
        mean = x.mean(dim=-1, keepdim=True)
        xc = x - mean
        return xc / torch.sqrt((xc * xc).mean(dim=-1, keepdim=True) + LN_EPS)
    t, c = x.shape[1], x.shape[2]
    x = x.reshape(1, -1, c)
    xc = x - x @ avg
    return (xc / torch.sqrt((xc * xc) @ avg + LN_EPS)).reshape(-1, t, c)


def _gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))


def _fold_ln_linear(ln, linear, out_rows=None, scale=1.0):
    """Returns a Linear computing scale * linear(ln(x)) from the plain-normalised x: W·diag(γ), W·β + b.

    out_rows selects a slice of the output rows (to split a fused qkv Linear)."""
    w = linear.weight.detach().double()
    b = linear.bias.detach().double()
    if out_rows is not None:
        w, b = w[out_rows], b[out_rows]
    gamma, beta = ln.weight.detach().double(), ln.bias.detach().double()
    out = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        out.weight.copy_((w * gamma[None, :] * scale).float())
        out.bias.copy_(((w @ beta + b) * scale).float())
    return out


def _avg_vector(dim, batch_agnostic):
    return torch.full((dim, 1), 1.0 / dim) if batch_agnostic else None


class _ExportBlock(nn.Module):
    def __init__(self, blk, tokens, batch_agnostic):
        super().__init__()
        a = blk.attn
        dim = a.proj.in_features
        self.tokens, self.heads, self.head_dim, self.dim = tokens, a.heads, a.head_dim, dim
        self.register_buffer("avg", _avg_vector(dim, batch_agnostic))
        # Separate q/k/v (a fused qkv split in ONNX imports wrongly or not at all); the attention scale
        # is folded into q so no extra Mul is exported.
        self.q = _fold_ln_linear(blk.norm1, a.qkv, slice(0, dim), scale=a.scale)
        self.k = _fold_ln_linear(blk.norm1, a.qkv, slice(dim, 2 * dim))
        self.v = _fold_ln_linear(blk.norm1, a.qkv, slice(2 * dim, 3 * dim))
        self.proj = a.proj
        self.fc1 = _fold_ln_linear(blk.norm2, blk.fc1)
        self.fc2 = blk.fc2

    def _heads(self, x):
        # Batch as -1 and the rest as Python ints: the ONNX Reshape then carries no batch size.
        return x.reshape(-1, self.tokens, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x):
        h = _layer_norm_plain(x, self.avg)
        q, k, v = self._heads(self.q(h)), self._heads(self.k(h)), self._heads(self.v(h))
        attn = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        o = (attn @ v).permute(0, 2, 1, 3).reshape(-1, self.tokens, self.dim)
        x = x + self.proj(o)
        return x + self.fc2(_gelu_erf(self.fc1(_layer_norm_plain(x, self.avg))))


# cv::gemm hands a product to BLAS only from this many rows of its left operand up; below, OpenCV's
# generic loop runs at ~6 GFLOP/s instead of ~100 (measured with cv2.gemm on this machine's OpenCV 4.6).
OPENCV_BLAS_MIN_ROWS = 100


class _BatchedBlock(_ExportBlock):
    """One block in the batched export form, shaped for OpenCV 4.6's fast paths:
      * the residual stream is 2-D (B*T, C), so every Linear exports as a Gemm with its bias fused (on
        3-D input it becomes MatMul + a separate bias layer, one more pass over every activation);
      * the attention products get >= OPENCV_BLAS_MIN_ROWS rows: with T < 100 (T = 50 for ViT-Tiny at
        112 px) each head's query rows (and attention rows) are repeated, multiplied, and the copies
        sliced off again; the extra rows cost little at BLAS speed, and softmax runs on T rows only."""

    def __init__(self, blk, tokens):
        super().__init__(blk, tokens, batch_agnostic=True)  # the same folded weights; _heads takes (M, C) too
        self.reps = -(-OPENCV_BLAS_MIN_ROWS // tokens)  # ceil

    def _norm(self, x):  # (M, C) -> (M, C)
        return _layer_norm_plain(x.reshape(-1, self.tokens, self.dim), self.avg).reshape(-1, self.dim)

    def _rows(self, x):  # (B, heads, T, n) -> (B, heads, reps*T, n)
        return torch.cat([x] * self.reps, dim=2) if self.reps > 1 else x

    def forward(self, x):
        h = self._norm(x)
        q, k, v = self._heads(self.q(h)), self._heads(self.k(h)), self._heads(self.v(h))
        t = self.tokens
        attn = torch.softmax((self._rows(q) @ k.transpose(-2, -1))[:, :, :t], dim=-1)
        o = (self._rows(attn) @ v)[:, :, :t].permute(0, 2, 1, 3).reshape(-1, self.dim)
        x = x + self.proj(o)
        # GELU on (1, M, mlp): OpenCV's element-wise layers loop over axis 1 with the rest as one plane,
        # so on (M, mlp) they would take M planes of one value each (measured ~1.3x slower).
        h = _gelu_erf(self.fc1(self._norm(x)).reshape(1, -1, self.fc1.out_features))
        return x + self.fc2(h.reshape(-1, self.fc1.out_features))


class ExportViT(nn.Module):
    """Inference-only ViT for ONNX export at a fixed image size.

    batch_agnostic=True avoids every constant that carries a batch dimension, so the ONNX file exported
    at batch 1 also runs batched in OpenCV: the class token is derived from the data (a zeroed slice of
    the patch tokens plus a constant) and the position embeddings are 2-D constants, which OpenCV
    imports as a broadcasting bias instead of a batch-1 Eltwise operand; its blocks are _BatchedBlock.
    batch_agnostic=False is the plain form (cat of a (1,1,C) constant class token), batch 1 only."""

    def __init__(self, model, batch_agnostic=True):
        super().__init__()
        grid = model.img_size // model.patch
        self.num_patches, self.dim, self.batch_agnostic = grid * grid, model.dim, batch_agnostic
        self.patch_embed = model.patch_embed
        pos = model.pos_embed.detach()
        cls_pos = (model.cls_token.detach() + pos[:, :1])  # (1, 1, C): class token with its position
        if batch_agnostic:
            self.register_buffer("cls_pos", cls_pos.reshape(1, -1).clone())          # (1, C)
            self.register_buffer("patch_pos", pos[0, 1:].clone())                     # (N, C)
        else:
            self.register_buffer("cls_pos", cls_pos.clone())                          # (1, 1, C)
            self.register_buffer("patch_pos", pos[:, 1:].clone())                     # (1, N, C)
        tokens = 1 + self.num_patches
        self.blocks = nn.ModuleList(_BatchedBlock(b, tokens) if batch_agnostic else _ExportBlock(b, tokens, False)
                                    for b in model.blocks)
        self.register_buffer("avg", _avg_vector(model.dim, batch_agnostic))
        self.head = _fold_ln_linear(model.norm, model.head)
        self.img_size = model.img_size

    def forward(self, x):
        x = self.patch_embed(x).reshape(-1, self.dim, self.num_patches).transpose(1, 2)  # (B, N, C)
        x = x + self.patch_pos
        if self.batch_agnostic:
            cls = x[:, :1] * 0.0 + self.cls_pos  # (B, 1, C) without a batch-1 constant
        else:
            cls = self.cls_pos
        x = torch.cat([cls, x], dim=1)
        if self.batch_agnostic:
            x = x.reshape(-1, self.dim)  # the batched blocks carry the tokens as (B*T, C)
        for blk in self.blocks:
            x = blk(x)
        if self.batch_agnostic:
            x = x.reshape(-1, 1 + self.num_patches, self.dim)
        # Normalise all tokens, then take the class token: OpenCV 4.6 cannot import a broadcasting Div
        # whose divisor has shape (1, 1, 1), which normalising the class token alone produces.
        return self.head(_layer_norm_plain(x, self.avg)[:, :1].reshape(-1, self.dim))


@torch.no_grad()
def to_export_form(model, img_size=None, batch_agnostic=True):
    """Maps a trained VisionTransformer onto an ExportViT (eval mode) at img_size (default: the model's).

    The source model is left unchanged."""
    import copy
    src = copy.deepcopy(model).eval()
    if img_size is not None:
        src.set_img_size(img_size)
    return ExportViT(src, batch_agnostic=batch_agnostic).eval()


# --------------------------------------------------------------------------------------------------
# Registry and checkpoint loading

ARCHS = ("resnet18", "vit_tiny", "resnet18_fullres", "vit_tiny_fullres", "resnet18_srm", "resnet18_srm_cs",
         "vit_tiny_srm")
# Each full-resolution arch and the pooled arch whose 112 px checkpoints it can start from exactly.
FULLRES_OF = {"resnet18_fullres": ("resnet18", "conv1.weight"),
              "vit_tiny_fullres": ("vit_tiny", "patch_embed.weight")}
# Archs that read the 224 px crop itself (trained and evaluated at 224, never on a downscaled crop).
# Archs behind the fixed NoiseResidual front (their first exported convolution is that filter bank).
RESIDUAL = ("resnet18_srm", "resnet18_srm_cs", "vit_tiny_srm")
FULL_RESOLUTION = tuple(FULLRES_OF) + RESIDUAL


def build_model(arch, num_classes=2, img_size=224, **kw):
    if arch == "resnet18":
        return resnet18(num_classes)
    if arch == "vit_tiny":
        return vit_tiny(num_classes, img_size=img_size, **kw)
    if arch == "resnet18_fullres":
        return resnet18_fullres(num_classes)
    if arch == "vit_tiny_fullres":
        return vit_tiny_fullres(num_classes, img_size=img_size, **kw)
    if arch == "resnet18_srm":
        return ResidualResNet(num_classes)
    if arch == "resnet18_srm_cs":
        return ResidualResNet(num_classes, conv_stem=True)
    if arch == "vit_tiny_srm":
        return ResidualViT(num_classes, **kw)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


def fullres_from_pooled(arch, state_dict, trained_size):
    """State dict of `arch` (a *_fullres arch) computing exactly what the pooled model in `state_dict`
    computes on a 2x2-average-pooled input: the model's first convolution C (kernel k, stride s,
    padding p) after a 2x2 average pool equals one convolution over the full-resolution input with
    kernel 2k, stride 2s and padding 2p whose weight is C's, each tap spread over a 2x2 block and
    divided by 4. Only a checkpoint trained at 112 px (half the 224 px crop) maps onto it."""
    if arch not in FULLRES_OF:
        raise ValueError(f"{arch} is not a full-resolution architecture")
    if trained_size * 2 != 224:
        raise ValueError(f"a {FULLRES_OF[arch][0]} checkpoint trained at {trained_size} px cannot start a "
                         f"{arch} model: it must have been trained at 112 px")
    key = FULLRES_OF[arch][1]
    out = dict(state_dict)
    w = state_dict[key]
    out[key] = w.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3) / 4.0
    return out


def load_weights(model, state_dict):
    """load_state_dict that also accepts a ViT state saved at another image size (pos_embed resampled)."""
    if isinstance(model, VisionTransformer) and "pos_embed" in state_dict:
        pos = state_dict["pos_embed"]
        if pos.shape != model.pos_embed.shape:
            grid = int(round(math.sqrt(model.pos_embed.shape[1] - 1)))
            state_dict = dict(state_dict, pos_embed=resize_pos_embed(pos, grid))
    model.load_state_dict(state_dict)
    return model


def export_ready(arch, model, img_size=224, batch_agnostic=True):
    """The module to hand to torch.onnx.export for a trained model of `arch` (eval mode)."""
    if arch == "vit_tiny" or isinstance(model, VisionTransformer):
        return to_export_form(model, img_size=img_size, batch_agnostic=batch_agnostic)
    if isinstance(model, ResidualViT):  # the stem's BatchNorms fold into its convolutions at export
        import copy
        src = copy.deepcopy(model).eval()
        return nn.Sequential(src.residual, src.stem,
                             to_export_form(src.vit, batch_agnostic=batch_agnostic)).eval()
    return model.eval()
