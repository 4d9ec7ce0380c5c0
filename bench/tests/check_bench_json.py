#!/usr/bin/python3
"""ctest bench_quick_crop: runs `dfmon bench --quick --json --groups crop` on the tiny models and checks
that the result document has the keys other tools read, with the reference side filled in.
No timing assertions: only that the numbers exist and are positive."""
import argparse
import json
import os
import subprocess
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dfmon", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--out-dir", required=True)
    a = p.parse_args()
    cmd = [a.dfmon, "--models", a.models, "--threads", "2", "bench", "--quick", "--json", "--groups", "crop",
           "--out-dir", a.out_dir]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=110)
    sys.stderr.write(r.stderr[-4000:])
    failures = []
    if r.returncode != 0:
        failures.append(f"exit code {r.returncode}")
    try:
        doc = json.loads(r.stdout)
    except ValueError as e:
        print(f"stdout is not JSON: {e}\n{r.stdout[:2000]}")
        print("0 passed, 1 failed")
        return 1

    def check(cond, what):
        if not cond:
            failures.append(what)

    def positive(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0

    check(doc.get("schema") == "dfmon.bench/1", "schema")
    crop = doc.get("crop", {})
    for key in ("ensemble_ms_per_face", "torch_ms_per_face", "limit_ms_per_face", "sgemm_gflops", "ensemble_gflops"):
        check(positive(crop.get(key)), f"crop.{key} = {crop.get(key)!r}")
    check([b.get("batch") for b in crop.get("batches", [])] == [1, 4, 8], "crop.batches are 1, 4, 8")
    for row in crop.get("batches", []):
        for side in ("opencv", "torch"):
            for name in ("tiny_a", "tiny_b", "ensemble"):
                v = row.get(side, {}).get(name, {}).get("ms_per_face")
                check(positive(v), f"crop.batches[{row.get('batch')}].{side}.{name}.ms_per_face = {v!r}")
    for name in ("tiny_a", "tiny_b"):
        d = crop.get("models", {}).get(name, {}).get("torch_parity_max_abs_diff")
        check(isinstance(d, (int, float)) and d <= 1e-4, f"crop.models.{name}.torch_parity_max_abs_diff = {d!r}")
    check("audit" not in doc and "live" not in doc, "only the crop group ran")
    for f in ("bench.json", "latency_vs_batch.svg", "torch_crop.json"):
        check(os.path.isfile(os.path.join(a.out_dir, f)), f"{f} written")
    for f in failures:
        print("FAILED:", f)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
