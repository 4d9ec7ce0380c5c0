#!/usr/bin/python3
"""Markdown tables from a `dfmon bench` result (bench.json), for docs/benchmarks.md.

  python3 bench/results_to_md.py bench/results/bench.json > /tmp/tables.md
"""
import json
import sys


def f(v, fmt="{:.1f}"):
    return "–" if v is None else fmt.format(v)


def crop_tables(c):
    out = [f"sgemm (cv::gemm, fp32, best run): **{f(c.get('sgemm_gflops'))} GFLOP/s** on {c.get('threads')} threads; "
           f"crops: {c.get('crops')} × {c.get('crop_source')}.", ""]
    out.append("| model | GFLOPs | FLOP-bound ms/face | PyTorch module (weights from the ONNX file) | max \\|Δp\\| vs cv2.dnn |")
    out.append("|---|---|---|---|---|")
    for name, m in c.get("models", {}).items():
        out.append(f"| {name} | {f(m.get('gflops'), '{:.2f}')} | {f(m.get('limit_ms_per_face'))} | "
                   f"{m.get('torch_source', m.get('torch_error', '–'))} | {m.get('torch_parity_max_abs_diff', '–')} |")
    out.append(f"| ensemble | {f(c.get('ensemble_gflops'), '{:.2f}')} | {f(c.get('limit_ms_per_face'))} | | |")
    out += ["", "| batch | model | OpenCV DNN ms/face | faces/s | PyTorch eager ms/face | OpenCV / PyTorch | FLOP limit ms/face |",
            "|---|---|---|---|---|---|---|"]
    for row in c.get("batches", []):
        ocv = row.get("opencv", {})
        names = [n for n in ocv if not n.startswith("ensemble")]
        names += [n for n in ("ensemble_sequential", "ensemble_opencv_layers", "ensemble") if n in ocv]
        for n in names:
            ens = n.startswith("ensemble")  # both ensemble rows compare with PyTorch's ensemble
            o = ocv.get(n, {})
            t = row.get("torch", {}).get("ensemble" if ens else n, {})
            ratio = o["ms_per_face"] / t["ms_per_face"] if o.get("ms_per_face") and t.get("ms_per_face") else None
            lim = row.get("limit_ms_per_face") if ens else c.get("models", {}).get(n, {}).get("limit_ms_per_face")
            b = f"**{n}**" if n == "ensemble" else n
            out.append(f"| {row['batch']} | {b} | {f(o.get('ms_per_face'))} | {f(o.get('faces_per_s'))} | "
                       f"{f(t.get('ms_per_face'))} | {f(ratio, '{:.2f}')}× | {f(lim)} |")
    return "\n".join(out)


def audit_table(a):
    p = a.get("python", {})
    out = ["| | elapsed s | media s | real-time factor | frames analysed | faces scored |", "|---|---|---|---|---|---|",
           f"| dfmon audit (C++) | {f(a.get('elapsed_s'), '{:.2f}')} | {f(a.get('media_s'))} | **{f(a.get('realtime_factor'), '{:.2f}')}×** | "
           f"{a.get('frames_analyzed', '–')} | {a.get('faces_scored', '–')} |",
           f"| Python reference | {f(p.get('elapsed_s'), '{:.2f}')} | {f(p.get('duration_s'))} | **{f(a.get('python_realtime_factor'), '{:.2f}')}×** | "
           f"{p.get('frames_analyzed', '–')} | {p.get('faces_scored', '–')} |",
           "", f"Where the time goes — dfmon: decoding alone {f(a.get('stages', {}).get('decode_s'), '{:.2f}')} s for the clip, "
           f"dlib HOG detection + landmarks {f(a.get('stages', {}).get('detect_ms_per_frame'))} ms per analysed frame, alignment "
           f"{f(a.get('stages', {}).get('align_ms_per_face'))} ms per face (the ensemble's cost per face is in the crop table); "
           f"Python: decode {f(p.get('stages_s', {}).get('decode'), '{:.2f}')} s, detection {f(p.get('stages_s', {}).get('detect'), '{:.2f}')} s, "
           f"crops + models {f(p.get('stages_s', {}).get('crop_and_models'), '{:.2f}')} s.",
           "", f"Speed-up of dfmon over the Python reference: **{f(a.get('speedup_vs_python'), '{:.2f}')}×**. "
           f"Python face detector: {p.get('detector', p.get('error', '–'))}."]
    return "\n".join(out)


def live_table(l):
    out = ["| streams | pass | slowest face rate Hz | drops | p50 ms | p95 ms | p99 ms | mean ms | ≤ 250 ms | peak RSS MB | dfmon CPU % | server CPU % |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in l.get("steps", []):
        lat = s.get("latency_ms", {})
        out.append(f"| {s['streams']} | {'yes' if s.get('pass') else 'no'} | {f(s.get('min_per_face_hz'), '{:.2f}')} | "
                   f"{s.get('drops', '–')} | {f(lat.get('p50'), '{:.0f}')} | {f(lat.get('p95'), '{:.0f}')} | "
                   f"{f(lat.get('p99'), '{:.0f}')} | {f(lat.get('mean'), '{:.0f}')} | "
                   f"{f(None if lat.get('frac_le_250ms') is None else 100 * lat['frac_le_250ms'], '{:.0f} %')} | {f(s.get('rss_mb'), '{:.0f}')} | "
                   f"{f(s.get('dfmon_cpu_pct'), '{:.0f}')} | {f(s.get('server_cpu_pct'), '{:.0f}')} |")
        if s.get("error"):
            out.append(f"| | error: {s['error']} | | | | | | | | | | |")
    return "\n".join(out)


def main():
    r = json.load(open(sys.argv[1]))
    m = r.get("machine", {})
    print(f"Run {r.get('date')}, {'quick' if r.get('quick') else 'full'}; {m.get('cpu')}, {m.get('cores')} cores, "
          f"OpenCV {m.get('opencv')}, {m.get('threads')} inference threads; load average "
          f"{m.get('loadavg_start', ['?'])[0]} → {m.get('loadavg_end', ['?'])[0]}; wall time {r.get('wall_s')} s.")
    busy = m.get("busy_processes_start", [])
    if busy:
        print("Other processes busy at the start: " + "; ".join(f"{b['cpu_pct']:.0f}% {b['cmd'][:70]}" for b in busy) + ".")
    else:
        print("No other process used more than 10% CPU at the start.")
    if "crop" in r:
        print("\n### crop\n")
        print(crop_tables(r["crop"]))
    if "audit" in r:
        print("\n### audit\n")
        print(audit_table(r["audit"]))
    if "live" in r:
        print("\n### live\n")
        print(live_table(r["live"]))


if __name__ == "__main__":
    main()
