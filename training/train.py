#!/usr/bin/python3
"""Trains a real/fake face-crop classifier from scratch on a seed-layout dataset.

  /usr/bin/python3 training/train.py --data DIR --arch resnet18 --out runs/r18 \
      --epochs 10 --size 112 --final-epochs 2 --final-size 224 --time-budget-min 60

Writes RUN_DIR/metrics.jsonl (one line per epoch), RUN_DIR/last.pt (every epoch, every
--ckpt-every-min minutes and when the time budget stops training) and RUN_DIR/best.pt (best val AUC).
`--resume` continues from RUN_DIR/last.pt, mid-epoch included. export.py turns a checkpoint into ONNX.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (first: sets the OpenMP wait policy before torch loads)

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import roc_auc, seed_everything, set_threads  # noqa: E402
from dataset import AUGMENT_LEVELS, make_loaders  # noqa: E402
from models import (ARCHS, FULL_RESOLUTION, FULLRES_OF, ResidualViT, VisionTransformer, build_model,  # noqa: E402
                    fullres_from_pooled, load_weights)
import onnx_import  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="seed-layout dataset: DIR/{train,val}/{real,fake}/*.jpg")
    p.add_argument("--arch", required=True, choices=ARCHS)
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl)")
    p.add_argument("--epochs", type=int, default=10, help="epochs at --size")
    p.add_argument("--size", type=int, default=112, help="training image size of the first phase")
    p.add_argument("--final-size", type=int, default=224, help="image size of the final phase")
    p.add_argument("--final-epochs", type=int, default=0, help="epochs at --final-size after --epochs")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 1e-3 resnet18, "
                                                           "5e-4 vit_tiny)")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clip (0 = off)")
    p.add_argument("--time-budget-min", type=float, default=0.0,
                   help="stop cleanly (validate, save) after this many minutes of this invocation; 0 = none")
    p.add_argument("--ckpt-every-min", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many optimiser steps in total "
                                                             "(smoke tests); 0 = no cap")
    p.add_argument("--epoch-steps", type=int, default=0, help="cap on steps per epoch; 0 = a full pass")
    p.add_argument("--log-every", type=int, default=50, help="steps between progress lines")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt if it exists")
    p.add_argument("--paired", action="store_true",
                   help="train on real/fake pairs (each real with one of its own synthetic fakes, same augmentation)")
    p.add_argument("--augment", choices=AUGMENT_LEVELS, default="full",
                   help="training augmentation: full (shipped: colour, down-up scaling, blur, noise, JPEG 40-95), "
                        "heavy (the same more often, JPEG 30-95), light (colour, JPEG 75-95), colour (flip and colour only)")
    p.add_argument("--detail-fakes", type=float, default=0.0,
                   help="with --paired: share of pairs whose fake is made on the fly from the real crop by changing "
                        "only the detail inside a face-region mask (needs DIR/landmarks.jsonl)")
    p.add_argument("--mask-loss", type=float, default=0.0,
                   help="with --paired, ResNets: weight of an auxiliary loss that makes layer3 say WHERE each fake "
                        "differs from its own real crop (as Face X-ray supervises the blend); 0 = off")
    p.add_argument("--mask-tau", type=float, default=0.1,
                   help="difference (normalised input units, mean over a layer3 cell) that counts as fully changed")
    p.add_argument("--teacher", help="checkpoint (train.py) of a trained model whose softmax this model also "
                                     "learns, knowledge distillation; it must read the same --size")
    p.add_argument("--distill", type=float, default=0.5,
                   help="with --teacher: weight of the teacher's soft targets in the classification loss, the "
                        "rest is the labels'")
    p.add_argument("--init", help="start from the weights of this checkpoint, or of an ONNX file from export.py "
                                  "such as models/resnet18.onnx (fine-tuning; fresh optimizer and schedule)")
    args = p.parse_args(argv)
    if args.lr is None:
        args.lr = 1e-3 if args.arch.startswith("resnet18") else 5e-4
    if args.final_epochs == 0:
        args.final_size = args.size
    if args.arch in FULL_RESOLUTION and (args.size, args.final_size) != (224, 224):
        p.error(f"--arch {args.arch} reads the 224 px crop itself: train it with --size 224")
    if not 0.0 <= args.detail_fakes <= 1.0:
        p.error(f"--detail-fakes {args.detail_fakes:g}: a share, must be within [0, 1]")
    if args.detail_fakes and not args.paired:
        p.error("--detail-fakes makes each fake from its real crop: it needs --paired")
    if args.mask_loss and not args.paired:
        p.error("--mask-loss learns where a fake differs from its own real crop: it needs --paired")
    if args.mask_loss and not (args.arch.startswith("resnet18") or args.arch == "vit_tiny_srm"):
        p.error(f"--mask-loss reads a ResNet's layer3 or vit_tiny_srm's middle block: not available for "
                f"--arch {args.arch}")
    if not 0.0 <= args.distill <= 1.0:
        p.error(f"--distill {args.distill:g}: a weight, must be within [0, 1]")
    if args.teacher and args.final_size != args.size:
        p.error("--teacher reads one image size: train without --final-epochs")
    if args.mask_tau <= 0:
        p.error(f"--mask-tau {args.mask_tau:g}: must be > 0")
    return args


def lr_at(step, total, warmup, peak, floor_ratio=0.01):
    """Linear warmup, then cosine decay to floor_ratio * peak."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor_ratio + (1 - floor_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def manipulation_targets(x, grid, tau):
    """Per-cell targets for --mask-loss from a paired batch (real, fake, real, fake, ...): how much each
    fake differs from its own real crop, pooled to the feature grid and scaled by tau into [0, 1];
    zeros for the reals. Both crops of a pair went through the same augmentation draws, so the
    difference is the manipulation (plus codec noise where the two JPEG blocks differ)."""
    diff = (x[1::2] - x[0::2]).abs().mean(1, keepdim=True)
    target = torch.zeros(x.shape[0], 1, *grid)
    target[1::2] = (F.adaptive_avg_pool2d(diff, grid) / tau).clamp(max=1.0)
    return target


def _token_grid(tokens):
    """(B, 1 + g*g, C) ViT tokens -> (B, C, g, g) map of the patch tokens (class token dropped)."""
    b, t, c = tokens.shape
    g = int(round(math.sqrt(t - 1)))
    return tokens[:, 1:].transpose(1, 2).reshape(b, c, g, g)


class MaskHead(nn.Module):
    """1x1 convolution on a ResNet's layer3 output (or vit_tiny_srm's patch tokens after its middle
    block), trained beside the classifier and never exported: it makes the shared features encode where
    the face was manipulated, not only whether (cf. Face X-ray, CVPR 2020), which a binary label can
    satisfy with a global shortcut such as overall softness."""

    def __init__(self, model):
        super().__init__()
        self.features = None
        if isinstance(model, ResidualViT):
            vit = model.vit
            source, channels, to_map = vit.blocks[len(vit.blocks) // 2 - 1], vit.dim, _token_grid
        else:
            source = getattr(model, "net", model).layer3
            channels, to_map = source[-1].conv2.out_channels, (lambda out: out)
        self.conv = nn.Conv2d(channels, 1, kernel_size=1)
        self._hook = source.register_forward_hook(lambda _m, _i, out: setattr(self, "features", to_map(out)))

    def loss(self, x, tau):
        f = self.features
        return F.binary_cross_entropy_with_logits(self.conv(f), manipulation_targets(x, f.shape[-2:], tau))


def switch_size(model, opt, size):
    """Progressive resizing of a ViT: bicubic pos-embed interpolation, and the optimizer takes the new
    pos_embed Parameter with fresh Adam moments (the old ones have the old grid's shape)."""
    old = model.pos_embed
    model.set_img_size(size)
    for g in opt.param_groups:
        g["params"] = [model.pos_embed if p is old else p for p in g["params"]]
    opt.state.pop(old, None)


def param_groups(model, weight_decay):
    # No weight decay on biases, norm parameters and the ViT's embeddings (standard practice).
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim <= 1 or name in ("pos_embed", "cls_token"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(model, loader, criterion):
    model.eval()
    losses, scores, labels = [], [], []
    for x, y in loader:
        logits = model(x)
        losses.append(criterion(logits, y).item() * len(y))
        scores.append(torch.softmax(logits, dim=1)[:, 1].numpy())
        labels.append(y.numpy())
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    n = int(len(labels))
    return {"n": n, "loss": float(sum(losses) / max(1, n)),
            "accuracy": float(((scores >= 0.5) == (labels == 1)).mean()) if n else 0.0,
            "auc": roc_auc(labels, scores)}


def load_teacher(path, size):
    """A trained model (eval mode, frozen) whose softmax the student learns; it must read `size` px."""
    ck = torch.load(path, map_location="cpu")
    if "arch" not in ck or "model" not in ck:
        raise ValueError(f"{path}: not a train.py checkpoint")
    if ck.get("img_size", size) != size:
        raise ValueError(f"{path}: teacher reads {ck['img_size']} px, the student trains at {size} px")
    teacher = build_model(ck["arch"], img_size=size)
    load_weights(teacher, ck["model"])
    for q in teacher.parameters():
        q.requires_grad_(False)
    return teacher.eval()


def soft_cross_entropy(logits, probs):
    return -(probs * F.log_softmax(logits, dim=1)).sum(1).mean()


def save_checkpoint(path, ckpt):
    tmp = path + ".tmp"
    torch.save(ckpt, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a truncated last.pt


def recipe(args):
    phases = f"{args.epochs} ep at {args.size}px"
    if args.final_epochs:
        phases += f" + {args.final_epochs} ep at {args.final_size}px"
    start = f"fine-tuned from {args.init}" if args.init else "from scratch"
    aug = {"full": "flip/colour/rescale/blur/noise/JPEG q40-95",
           "heavy": "flip/colour/rescale 0.6/blur 0.35/noise 0.35/JPEG 0.9 q30-95", "light": "flip/colour/JPEG q75-95",
           "colour": "flip/colour"}[args.augment]
    sampling = "real/fake pairs" if args.paired else "class-balanced sampling"
    if args.paired and args.detail_fakes:
        sampling += f", {args.detail_fakes:g} of the fakes detail-only from the real crop"
    if args.mask_loss:
        where = "middle block's tokens" if args.arch == "vit_tiny_srm" else "layer3"
        sampling += f", auxiliary manipulation-map loss ({where}, weight {args.mask_loss:g}, tau {args.mask_tau:g})"
    if args.teacher:
        sampling += f", distilled from {args.teacher} (soft-target weight {args.distill:g})"
    return (f"{args.arch} {start}; {phases}; AdamW lr {args.lr:g} wd {args.weight_decay:g}, "
            f"warmup {args.warmup_epochs:g} ep + cosine; batch {args.batch}; label smoothing "
            f"{args.label_smoothing:g}; aug {aug} on both classes; {sampling}")


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    seed_everything(args.seed)
    os.makedirs(args.out, exist_ok=True)
    last_path, best_path = os.path.join(args.out, "last.pt"), os.path.join(args.out, "best.pt")
    metrics_path = os.path.join(args.out, "metrics.jsonl")

    train_dl, val_dl = make_loaders(args.data, args.size, args.batch, args.workers, args.seed, args.paired,
                                    args.augment, args.detail_fakes)
    n_train, n_val = len(train_dl.dataset), len(val_dl.dataset)
    total_epochs = args.epochs + args.final_epochs
    steps_per_epoch = len(train_dl) if not args.epoch_steps else min(len(train_dl), args.epoch_steps)
    total_steps = steps_per_epoch * total_epochs
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    warmup = int(args.warmup_epochs * steps_per_epoch)

    def size_of(epoch):
        return args.size if epoch < args.epochs else args.final_size

    model = build_model(args.arch, img_size=size_of(0))
    mask_head = MaskHead(model) if args.mask_loss else None
    teacher = None
    if args.teacher:
        try:
            teacher = load_teacher(args.teacher, args.size)
        except (OSError, RuntimeError, ValueError) as e:
            sys.exit(f"--teacher {args.teacher}: {e}")
    groups = param_groups(model, args.weight_decay)
    if mask_head is not None:
        groups.append({"params": list(mask_head.conv.parameters()), "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=args.lr)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    eval_criterion = nn.CrossEntropyLoss()
    st = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "images_seen": 0, "wall_sec": 0.0,
          "best_key": -1.0}

    if args.init and not (args.resume and os.path.exists(last_path)):
        try:  # an ONNX file (e.g. a bundled model) is read back, its BatchNorm calibrated on --data
            ck = onnx_import.load_checkpoint(args.init, calib=args.data)
        except ValueError as e:
            sys.exit(str(e))
        if "import_parity" in ck:
            print(f"{args.init}: imported {ck['arch']} at {ck['img_size']} px, max |softmax diff| to cv2.dnn "
                  f"{ck['import_parity']:.2g}", flush=True)
        state = ck["model"]
        if args.arch in FULLRES_OF and ck.get("arch") == FULLRES_OF[args.arch][0]:
            try:  # start exactly where the 112 px model stands, now with every pixel in view
                state = fullres_from_pooled(args.arch, state, ck.get("img_size", 224))
            except ValueError as e:
                sys.exit(f"{args.init}: {e}")
        elif ck.get("arch", args.arch) != args.arch:
            sys.exit(f"{args.init} is a {ck['arch']} checkpoint, not {args.arch}")
        load_weights(model, state)  # a ViT's pos_embed is resampled to the current size
        print(f"initialised from {args.init}", flush=True)
    if args.resume and os.path.exists(last_path):
        ck = torch.load(last_path, map_location="cpu")
        if ck["arch"] != args.arch:
            sys.exit(f"{last_path} is a {ck['arch']} checkpoint, not {args.arch}")
        if isinstance(model, VisionTransformer):
            switch_size(model, opt, ck["img_size"])  # before loading: the optimizer state has that shape
        model.load_state_dict(ck["model"])
        if mask_head is not None:
            if "mask_head" not in ck:
                sys.exit(f"{last_path} was trained without --mask-loss: resume it without, or start a new run")
            mask_head.conv.load_state_dict(ck["mask_head"])
        opt.load_state_dict(ck["optimizer"])
        st.update(ck["state"])
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {last_path}: epoch {st['epoch']} step {st['step_in_epoch']}, "
              f"{st['images_seen']} images seen", flush=True)

    data_desc = f"{args.data} ({n_train} train / {n_val} val crops)"

    def checkpoint(val_metrics):
        extra = {"mask_head": mask_head.conv.state_dict()} if mask_head is not None else {}
        return {**extra, "arch": args.arch, "img_size": getattr(model, "img_size", size_of(st["epoch"])),
                "model": model.state_dict(), "optimizer": opt.state_dict(), "state": dict(st),
                "torch_rng": torch.get_rng_state(), "args": vars(args),
                "metrics": {"val": val_metrics} if val_metrics else None,
                "training": {"data": data_desc, "recipe": recipe(args), "epochs": st["epoch"],
                             "images_seen": st["images_seen"], "wall_min": round(st["wall_sec"] / 60, 2),
                             "seed": args.seed}}

    t_start = time.time()
    wall_base = st["wall_sec"]
    last_ckpt_time = t_start
    stop_reason = None

    def validate_and_save(epoch_done, train_loss, img_s, partial):
        val = evaluate(model, val_dl, eval_criterion)
        st["wall_sec"] = wall_base + time.time() - t_start
        rec = {"epoch": st["epoch"] + (0 if epoch_done else 1), "partial": partial,
               "size": train_dl.dataset.size, "train_loss": train_loss, "val_loss": val["loss"],
               "val_acc": val["accuracy"], "val_auc": val["auc"], "val_n": val["n"], "img_s": img_s,
               "lr": opt.param_groups[0]["lr"], "images_seen": st["images_seen"],
               "step": st["global_step"], "wall_min": round(st["wall_sec"] / 60, 2)}
        auc = "n/a" if val["auc"] is None else f"{val['auc']:.4f}"
        print(f"epoch {rec['epoch']}/{total_epochs}{' (partial)' if partial else ''} size {rec['size']} | "
              f"train loss {train_loss:.4f} | val loss {val['loss']:.4f} acc {val['accuracy']:.4f} "
              f"auc {auc} (n={val['n']}) | {img_s:.1f} img/s | lr {rec['lr']:.2e} | "
              f"seen {st['images_seen']} | {rec['wall_min']:.1f} min", flush=True)
        with open(metrics_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        # Best by val AUC (accuracy when the val set has one class only).
        key = val["auc"] if val["auc"] is not None else val["accuracy"]
        ck = checkpoint(val)
        if key > st["best_key"]:
            st["best_key"] = key
            ck["state"] = dict(st)
            save_checkpoint(best_path, ck)
        save_checkpoint(last_path, ck)

    while st["epoch"] < total_epochs and stop_reason is None:
        if args.max_steps and st["global_step"] >= args.max_steps:
            stop_reason = "max steps"
            break
        size = size_of(st["epoch"])
        if train_dl.dataset.size != size or getattr(model, "img_size", size) != size:
            print(f"image size -> {size}", flush=True)
            train_dl.dataset.size = val_dl.dataset.size = size
            if isinstance(model, VisionTransformer) and model.img_size != size:
                switch_size(model, opt, size)
        # Re-seed the sampler per epoch so a resumed run draws the same epochs as an uninterrupted one.
        train_dl.sampler.generator.manual_seed(args.seed * 100003 + st["epoch"])
        model.train()
        loss_sum, mask_sum, n_seen, t_epoch = 0.0, 0.0, 0, time.time()
        steps_left = steps_per_epoch - st["step_in_epoch"]
        for x, y in train_dl:
            lr = lr_at(st["global_step"], total_steps, warmup, args.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            logits = model(x)
            cls_loss = criterion(logits, y)
            loss = cls_loss
            if teacher is not None:  # "loss" stays the labels' loss, comparable with other runs
                with torch.no_grad():
                    target = torch.softmax(teacher(x), dim=1)
                loss = (1 - args.distill) * cls_loss + args.distill * soft_cross_entropy(logits, target)
            if mask_head is not None:  # reported apart: "loss" stays the classification loss of other runs
                mask_loss = mask_head.loss(x, args.mask_tau)
                mask_sum += mask_loss.item() * len(y)
                loss = loss + args.mask_loss * mask_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                # Everything the optimiser steps, the mask head included (one norm over all of it).
                nn.utils.clip_grad_norm_([q for g in opt.param_groups for q in g["params"]], args.clip)
            opt.step()
            steps_left -= 1
            st["step_in_epoch"] += 1
            st["global_step"] += 1
            st["images_seen"] += len(y)
            loss_sum += cls_loss.item() * len(y)
            n_seen += len(y)
            now = time.time()
            if args.log_every and st["global_step"] % args.log_every == 0:
                mask = f" (mask {mask_sum / n_seen:.4f})" if mask_head is not None else ""
                print(f"  step {st['global_step']}/{total_steps} loss {loss_sum / n_seen:.4f}{mask} "
                      f"{n_seen / (now - t_epoch):.1f} img/s lr {lr:.2e}", flush=True)
            if args.max_steps and st["global_step"] >= args.max_steps:
                stop_reason = "max steps"
                break
            if args.time_budget_min and now - t_start > args.time_budget_min * 60:
                stop_reason = "time budget"
                break
            if args.ckpt_every_min and now - last_ckpt_time > args.ckpt_every_min * 60:
                st["wall_sec"] = wall_base + now - t_start
                save_checkpoint(last_path, checkpoint(None))
                last_ckpt_time = now
            if steps_left <= 0:
                break
        img_s = n_seen / max(1e-9, time.time() - t_epoch)
        epoch_done = st["step_in_epoch"] >= steps_per_epoch
        if epoch_done:
            st["epoch"] += 1
            st["step_in_epoch"] = 0
        validate_and_save(epoch_done, loss_sum / max(1, n_seen), img_s, partial=not epoch_done)
        last_ckpt_time = time.time()

    if stop_reason:
        print(f"stopped: {stop_reason}; resume with --resume", flush=True)
    print(f"done: {st['images_seen']} images seen, best val AUC {st['best_key']:.4f}, "
          f"checkpoints in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
