#!/usr/bin/python3
"""Frame- and video-level ROC AUC from a dfmon.audit/1 report whose file names carry the label."""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training"))
from common import bootstrap_auc, interval, roc_auc  # noqa: E402  (numpy only; the training scripts' AUC)


def auc(labels, scores):
    """Mann-Whitney U with ties counted half (same rule as dfmon evaluate); NaN when a class is missing."""
    a = roc_auc(labels, scores)
    return float("nan") if a is None else a


def label_of(path):
    name = os.path.basename(path)
    if re.search(r"(^|[._])(fake)([._]|$)", name, re.I):
        return 1
    if re.search(r"(^|[._])(real)([._]|$)", name, re.I):
        return 0
    return None


def main():
    report = json.load(open(sys.argv[1]))
    names = [m["name"] for m in report["models"]]
    keys = names + ["ensemble"]
    frame = {k: ([], []) for k in keys}
    video = {k: ([], []) for k in keys}
    per_video = {}
    skipped = []
    for inp in report["inputs"]:
        y = label_of(inp["source"])
        if y is None or inp["status"] != "ok" or not inp["timeline"]:
            skipped.append((os.path.basename(inp["source"]), inp.get("error") or "no faces"))
            continue
        for k in keys:
            vals = [p["ensemble"] if k == "ensemble" else p["models"][k] for p in inp["timeline"]]
            frame[k][0].extend([y] * len(vals))
            frame[k][1].extend(vals)
            video[k][0].append(y)
            video[k][1].append(float(np.mean(vals)))
        per_video[os.path.basename(inp["source"])] = (y, float(np.mean([p["ensemble"] for p in inp["timeline"]])))
    nv = len(video["ensemble"][0])
    nf = sum(video["ensemble"][0])
    print("videos scored: %d (%d fake, %d real); skipped %d" % (nv, nf, nv - nf, len(skipped)))
    for name, why in skipped:
        print("  skipped %s: %s" % (name, why))
    # 95 % interval of the video AUC: stratified bootstrap over the videos (the unit that varies).
    boot = bootstrap_auc(video["ensemble"][0], [video[k][1] for k in keys])
    print("%-10s %10s %10s %15s   (frames: %d)" % ("model", "frame AUC", "video AUC", "95% interval",
                                                  len(frame["ensemble"][0])))
    for i, k in enumerate(keys):
        ci = "%.2f-%.2f" % interval(boot[:, i]) if boot is not None else "n/a"
        print("%-10s %10.3f %10.3f %15s" % (k, auc(*frame[k]), auc(*video[k]), ci))
    # Same-footage pairs (DeepFaceLive halves): does each fake score above its own real?
    pairs = []
    for name, (y, s) in per_video.items():
        if name.startswith("fake_dfl_"):
            real = "real_" + name[len("fake_"):]
            if real in per_video:
                pairs.append(s - per_video[real][1])
    if pairs:
        print("same-footage pairs: fake above its real in %d of %d (mean difference %+.3f)" %
              (sum(d > 0 for d in pairs), len(pairs), float(np.mean(pairs))))


if __name__ == "__main__":
    main()
