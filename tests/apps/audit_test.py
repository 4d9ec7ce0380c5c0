#!/usr/bin/python3
"""`dfmon audit` end to end: bad inputs next to good ones, JSON schema, HTML report in headless Chromium.

usage: audit_test.py DFMON MODELS_DIR SAMPLES_DIR WORKDIR [--real-models]

Plumbing mode (tiny models): every bad input gets status "error" with a reason naming it, the good
input is still audited, exit code 2, the JSON has the dfmon.audit/1 fields, and the HTML report renders
in Chromium with one plot per track. --real-models: the bundled models audit the real sample clip and the
synthetic fake sample to the expected verdicts.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testutil import stage_for_nobody  # noqa: E402


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def run(cmd, env=None, timeout=240, user=None):
    if user is not None:
        cmd = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, capture_output=True, timeout=120)


def make_bad_inputs(work, good):
    bad = {}
    bad["missing"] = os.path.join(work, "missing.mp4")
    bad["zero"] = os.path.join(work, "zero.mp4")
    open(bad["zero"], "wb").close()
    data = open(good, "rb").read()
    bad["truncated"] = os.path.join(work, "truncated.mp4")
    open(bad["truncated"], "wb").write(data[: len(data) // 3])
    bad["random"] = os.path.join(work, "random.mp4")
    open(bad["random"], "wb").write(os.urandom(200000))
    bad["audio"] = os.path.join(work, "audio_only.mp4")
    sh("ffmpeg -loglevel error -y -f lavfi -i sine=frequency=440:duration=2 -c:a aac '%s'" % bad["audio"])
    # A codec no installed decoder handles: Theora with both of GStreamer's Theora decoders disabled.
    bad["codec"] = os.path.join(work, "theora.mkv")
    sh("ffmpeg -loglevel error -y -f lavfi -i testsrc=size=160x120:rate=10 -t 1 -c:v libtheora '%s'" % bad["codec"])
    unreadable = os.path.join(work, "locked")
    os.makedirs(os.path.join(unreadable, "inner"), exist_ok=True)
    shutil.copy(good, os.path.join(unreadable, "inner", "clip.mp4"))
    os.chmod(os.path.join(unreadable, "inner"), 0)
    bad["unreadable_dir"] = os.path.join(unreadable, "inner")
    return bad, unreadable


def check_model_metrics(report, models):
    """Each model's measured quality is copied from its card, so the report says how far to trust it."""
    for m in report["models"]:
        card = json.load(open(os.path.join(models, m["name"] + ".json")))
        if m.get("metrics") != card.get("metrics"):
            fail("models[%s].metrics %r differs from its card's %r" % (m["name"], m.get("metrics"), card.get("metrics")))


def check_schema(report, names):
    for key in ("schema", "version", "models", "settings", "inputs", "summary"):
        if key not in report:
            fail("report lacks %s" % key)
    if report["schema"] != "dfmon.audit/1":
        fail("schema %s" % report["schema"])
    if [m["name"] for m in report["models"]] != names or not all(len(m["sha256"]) == 64 for m in report["models"]):
        fail("models block: %s" % report["models"])
    for inp in report["inputs"]:
        for key in ("source", "status", "error", "duration_s", "frames_decoded", "frames_analyzed", "faces_scored",
                    "tracks", "timeline", "alerts", "elapsed_s"):
            if key not in inp:
                fail("input lacks %s: %s" % (key, inp["source"]))
        if inp["status"] == "ok":
            if inp["verdict"] not in ("fake", "real", "no_faces") or not (0 <= inp["score"] <= 1):
                fail("bad verdict/score: %s" % inp)
            for p in inp["timeline"]:
                if set(p) != {"t", "track", "bbox", "models", "ensemble", "smoothed"} or set(p["models"]) != set(names):
                    fail("timeline point: %s" % p)
                if abs(p["ensemble"] - sum(p["models"].values()) / len(names)) > 2e-4:
                    fail("ensemble is not the mean of the models: %s" % p)
        elif "verdict" in inp:
            fail("an error input has a verdict: %s" % inp)


def html_plots(html_path, work):
    """Track plots as Chromium sees them (the DOM after parsing)."""
    profile = tempfile.mkdtemp(dir=work)
    code, dom, err = run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
                          "--dump-dom", "file://" + html_path], timeout=120)
    if code != 0 or "<html" not in dom:
        fail("chromium could not render the report (%d): %s" % (code, err[-500:]))
    return len(re.findall(r'<svg[^>]*class="track-plot"', dom)), len(re.findall(r'<img[^>]*class="thumb"', dom))


def plumbing(dfmon, models, samples, work):
    good = os.path.join(samples, "clips", "real_d18.mp4")
    if os.geteuid() == 0:  # the audit runs as nobody: everything it reads must be reachable by that user
        dfmon, models, work = stage_for_nobody(dfmon, models, work)
        shutil.copy(good, os.path.join(work, "real_d18.mp4"))
        good = os.path.join(work, "real_d18.mp4")
    bad, unreadable = make_bad_inputs(work, good)
    env = dict(os.environ, GST_PLUGIN_FEATURE_RANK="theoradec:0,avdec_theora:0")
    html = os.path.join(work, "report.html")
    report_path = os.path.join(work, "report.json")
    cmd = [dfmon, "--models", models, "audit", good] + list(bad.values()) + \
          ["--json", "--report", report_path, "--html", html, "--timeout", "20"]
    uid = 65534 if os.geteuid() == 0 else None  # root reads any directory: audit as nobody
    if uid is not None:
        os.chmod(work, 0o777)
        for d, _, files in os.walk(work):
            os.chmod(d, 0o777) if d != bad["unreadable_dir"] else None
    code, out, err = run(cmd, env=env, user=uid)
    if code != 2:
        fail("exit code %d (expected 2)\n%s" % (code, err[-2000:]))
    report = json.loads(out)
    if json.load(open(report_path)) != report:
        fail("--report file differs from --json output")
    check_schema(report, ["tiny_a", "tiny_b"])
    check_model_metrics(report, models)
    by_src = {i["source"]: i for i in report["inputs"]}
    g = by_src.get(good)
    if not g or g["status"] != "ok" or g["faces_scored"] < 10 or not g["tracks"]:
        fail("the good clip was not audited: %s" % (g and {k: g[k] for k in ("status", "error", "faces_scored")}))
    for kind, path in bad.items():
        matches = [i for i in report["inputs"] if i["source"].startswith(path)]
        if not matches:
            fail("%s input missing from the report" % kind)
        for i in matches:
            if i["status"] != "error" or not i["error"] or os.path.basename(path) not in i["error"]:
                fail("%s input: status %s, error %r (must name the input)" % (kind, i["status"], i["error"]))
        print("%-15s -> %s" % (kind, matches[0]["error"][:110]), flush=True)
    if report["summary"]["errors"] != len(report["inputs"]) - 1:
        fail("summary: %s" % report["summary"])
    plots, thumbs = html_plots(html, work)
    tracks = sum(len(i["tracks"]) for i in report["inputs"])
    if plots != tracks or thumbs != tracks:
        fail("HTML shows %d plots and %d thumbnails for %d tracks" % (plots, thumbs, tracks))
    print("HTML: %d plots, %d thumbnails for %d tracks" % (plots, thumbs, tracks), flush=True)
    os.chmod(bad["unreadable_dir"], 0o755)


def real_models(dfmon, models, samples, work):
    real = os.path.join(samples, "clips", "real_d18.mp4")
    fake = os.path.join(samples, "clips", "synthetic_fake_d18.mp4")
    code, out, err = run([dfmon, "--models", models, "audit", real, fake, "--json"])
    report = json.loads(out)
    check_schema(report, ["resnet18", "vit"])
    check_model_metrics(report, models)
    html = os.path.join(work, "real.html")
    run([dfmon, "--models", models, "audit", real, "--html", html])
    page = open(html).read()
    if "real deepfakes video AUC" not in page or 'class="caution"' not in page:
        fail("the HTML report does not show the models' measured quality and the near-chance caution")
    verdicts = {os.path.basename(i["source"]): (i.get("verdict"), i.get("score")) for i in report["inputs"]}
    print("verdicts:", verdicts, flush=True)
    if verdicts["real_d18.mp4"][0] != "real" or verdicts["synthetic_fake_d18.mp4"][0] != "fake" or code != 1:
        fail("expected real_d18 real and synthetic_fake_d18 fake with exit 1, got %s, exit %d" % (verdicts, code))


def main():
    if len(sys.argv) < 5:
        print(__doc__)
        sys.exit(2)
    dfmon, models, samples, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    if "--real-models" in sys.argv:
        real_models(dfmon, models, samples, work)
    else:
        plumbing(dfmon, models, samples, work)
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
