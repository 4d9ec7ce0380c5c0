#!/usr/bin/python3
"""Parity of the shipped models: OpenCV DNN (what dfmon runs) vs PyTorch on the same weights.

The repository ships ONNX files only; bench/reference/torch_models.py rebuilds the ordinary PyTorch
module of each architecture from the ONNX initializers. For every model in MODELS_DIR this compares
softmax outputs on real photo content (the self-check crop, sample photos, flipped and resized) one by
one and as one batch (the card's max_batch 0 claims any batch works): max |diff| must be <= 1e-4.

usage: shipped_parity.py MODELS_DIR SAMPLES_DIR
"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "reference"))
import torch_models as tm  # noqa: E402  (imports training/common.py first: OpenMP wait policy)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

TOL = 1e-4


def crops(models_dir, samples_dir):
    out = []
    sc = cv2.imread(os.path.join(models_dir, "selfcheck.jpg"))
    if sc is not None:
        out += [sc, sc[:, ::-1].copy()]
    for p in sorted(glob.glob(os.path.join(samples_dir, "images", "*.jpg"))):
        img = cv2.imread(p)
        h, w = img.shape[:2]
        s = min(h, w)
        sq = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(cv2.resize(sq, (224, 224), interpolation=cv2.INTER_AREA))
    return out


def main():
    models_dir, samples_dir = sys.argv[1:3]
    images = crops(models_dir, samples_dir)
    if len(images) < 4:
        print("FAIL: fewer than 4 parity images")
        return 1
    worst = 0.0
    for card_path in sorted(glob.glob(os.path.join(models_dir, "*.json"))):
        card = json.load(open(card_path))
        if card.get("schema") != "dfmon.model_card/1":
            continue
        onnx_path = os.path.join(models_dir, card["file"])
        module, how = tm.load_reference(onnx_path, card)
        single = tm.verify_against_opencv(module, onnx_path, card, images)
        # One batch through cv2.dnn, compared with PyTorch on the same blob.
        blob = tm.preprocess(images, card)
        net = cv2.dnn.readNetFromONNX(onnx_path)
        net.setInput(blob.numpy())
        batched = tm.softmax_np(net.forward().reshape(len(images), -1))
        with torch.no_grad():
            ref = tm.softmax_np(module(blob).numpy())
        batch_diff = float(np.abs(batched - ref).max())
        print("%s (%s): single max |diff| %.3g, batch of %d %.3g" % (card["name"], how, single, len(images), batch_diff))
        if not single <= TOL or (card["input"].get("max_batch", 0) == 0 and not batch_diff <= TOL):
            print("FAIL: %s parity above %g" % (card["name"], TOL))
            return 1
        worst = max(worst, single, batch_diff)
    if worst == 0.0:
        print("FAIL: no model cards in %s" % models_dir)
        return 1
    print("PASS: worst %.3g" % worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
