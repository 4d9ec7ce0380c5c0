#!/usr/bin/python3
"""Fault injection against the real dfmon binary (issue #8). Every case is bounded by a timeout and
checks: a clear error naming the input, the right exit code, no crash (no signal death), and that the
good input beside the bad ones is still processed.

usage: faults_test.py DFMON TINY_MODELS SOURCE_DIR WORKDIR

Prints one `RESULT` line per case (docs/reliability.md is built from them).
"""
import calendar
import http.server
import json
import os
import random
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testutil import describe_process, stage_for_nobody  # noqa: E402

DFMON, MODELS, SRC, WORK = (os.path.abspath(a) for a in sys.argv[1:5])
GOOD = os.path.join(SRC, "samples", "clips", "real_d18.mp4")
PHOTO = os.path.join(SRC, "samples", "images", "obama2.jpg")
results = []


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def result(case, outcome):
    results.append((case, outcome))
    print("RESULT %-34s %s" % (case, outcome), flush=True)


def run(args, timeout=180, user=None, models=None, dfmon=None, **kw):
    """Runs dfmon; a timeout or a death by signal fails the test (a hang or a crash)."""
    cmd = [dfmon or DFMON, "--models", models or MODELS] + args
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        fail("hang: %s did not finish in %d s" % (" ".join(cmd), timeout))
    if p.returncode < 0:
        fail("crash: %s died of signal %d\n%s" % (" ".join(cmd), -p.returncode, p.stderr[-3000:]))
    p.elapsed = time.time() - t0
    return p


def terminate(proc, what, timeout, log=None):
    """SIGTERM, then wait; a process still running after `timeout` s is a hang: the failure shows what its
    threads were doing and the end of its log. Returns seconds taken."""
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        state = describe_process(proc.pid)
        proc.kill()
        tail = open(log).read()[-4000:] if log else ""
        fail("%s did not stop within %d s of SIGTERM\n%s\n-- log tail:\n%s" % (what, timeout, state, tail))
    return time.time() - t0


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y"] + list(args), check=True, timeout=300)


def inputs_by_name(report):
    return {os.path.basename(i["source"]): i for i in report["inputs"]}


# ---------------------------------------------------------------------------------------------------
def audit_corpus():
    d = os.path.join(WORK, "corpus")
    os.makedirs(d)
    data = open(GOOD, "rb").read()
    bad = {}  # name -> "error" (must fail naming the input) | "any" (may decode partly, must not crash)
    open(os.path.join(d, "zero.mp4"), "wb").close()
    bad["zero.mp4"] = "error"
    for pct in (1, 10, 50, 90):
        name = "trunc%02d.mp4" % pct
        open(os.path.join(d, name), "wb").write(data[: len(data) * pct // 100])
        bad[name] = "error" if pct <= 10 else "any"
    rnd = random.Random(8)
    for ext in ("mp4", "mkv", "avi", "webm", "mov", "ts"):
        name = "random.%s" % ext
        open(os.path.join(d, name), "wb").write(bytes(rnd.getrandbits(8) for _ in range(150000)))
        bad[name] = "error"
    # Valid container header, garbage payload: the first 4 KB of a real file then random bytes.
    open(os.path.join(d, "header_then_noise.mp4"), "wb").write(
        data[:4096] + bytes(rnd.getrandbits(8) for _ in range(200000)))
    bad["header_then_noise.mp4"] = "any"
    open(os.path.join(d, "text.mp4"), "w").write("this is not a video\n" * 100)
    bad["text.mp4"] = "error"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", os.path.join(d, "audio_only.m4a"))
    bad["audio_only.m4a"] = "error"
    ffmpeg("-f", "lavfi", "-i", "color=color=gray:size=2x2:rate=5", "-t", "1", "-vf", "scale=1:1", "-c:v", "rawvideo",
           "-pix_fmt", "bgr24",
           os.path.join(d, "one_pixel.avi"))
    bad["one_pixel.avi"] = "no_faces"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=7680x4320:rate=2", "-t", "1", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", os.path.join(d, "eight_k.mp4"))
    bad["eight_k.mp4"] = "no_faces"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1", "-c:v", "libtheora",
           os.path.join(d, "theora.ogv"))
    bad["theora.ogv"] = "any"  # decodable when a Theora decoder is installed; audit_e2e disables them
    shutil.copy(PHOTO, os.path.join(d, "photo.jpg"))
    bad["photo.jpg"] = "ok"  # a still image is audited as a one-frame video
    shutil.copy(GOOD, os.path.join(d, "good.mp4"))

    files = sorted(os.listdir(d))
    p = run(["audit", "--no-progress", "--report", os.path.join(WORK, "corpus.json")] +
            [os.path.join(d, f) for f in files], timeout=400)
    if p.returncode != 2:
        fail("corpus audit exit %d, expected 2:\n%s" % (p.returncode, p.stderr[-2000:]))
    rep = inputs_by_name(json.load(open(os.path.join(WORK, "corpus.json"))))
    if rep["good.mp4"]["status"] != "ok" or not rep["good.mp4"]["tracks"]:
        fail("the good clip beside the bad ones was not audited: %s" % rep["good.mp4"])
    for name, want in sorted(bad.items()):
        i = rep[name]
        if want == "error" or (want == "any" and i["status"] == "error"):
            if i["status"] != "error" or name not in (i.get("error") or ""):
                fail("%s: status %s, error %r (must be an error naming the input)" % (name, i["status"], i.get("error")))
            result("audit " + name, "error: " + i["error"].split(": ", 1)[-1][:70])
        elif want == "no_faces":
            if i["status"] != "ok" or i.get("verdict") != "no_faces":
                fail("%s: expected a clean no_faces result, got %s" % (name, i))
            result("audit " + name, "ok, no_faces")
        else:
            if i["status"] != "ok":
                fail("%s: expected ok, got %s" % (name, i))
            result("audit " + name, "ok, %s" % i.get("verdict"))
    result("audit corpus run", "exit 2, %d inputs in %.1f s, good clip audited" % (len(files), p.elapsed))


def audit_hostile_names():
    """File names are attacker-controlled: the HTML report must show them as text, never as markup."""
    d = os.path.join(WORK, "hostile")
    os.makedirs(d)
    names = ["<script>alert(1)<script>.mp4", "<img src=x onerror=alert(2)>.mp4", "quote\"'&amp;.mp4"]
    for n in names:
        shutil.copy(GOOD, os.path.join(d, n))
    html = os.path.join(WORK, "hostile.html")
    p = run(["audit", "--no-progress", "--html", html, "--report", html + ".json", d], timeout=300)
    if p.returncode not in (0, 1):
        fail("hostile names: exit %d\n%s" % (p.returncode, p.stderr[-1500:]))
    text = open(html).read()
    if "<img src=x onerror" in text or "<script>alert" in text:
        fail("HTML report contains markup from a file name")
    if "&lt;script&gt;alert(1)&lt;script&gt;.mp4" not in text:
        fail("escaped file name not found in the HTML report")
    names_json = {os.path.basename(i["source"]) for i in json.load(open(html + ".json"))["inputs"]}
    if names_json != set(names):
        fail("JSON report names: %s" % names_json)
    result("audit hostile file names", "HTML shows them escaped, JSON keeps them exact")


def audit_unreadable():
    if os.geteuid() != 0:
        result("audit unreadable file/dir", "skipped (needs root to drop to another uid)")
        return
    dfmon, models, base = stage_for_nobody(DFMON, MODELS, WORK)
    d = os.path.join(base, "perm")
    os.makedirs(os.path.join(d, "locked"))
    shutil.copy(GOOD, os.path.join(d, "ok.mp4"))
    shutil.copy(GOOD, os.path.join(d, "noread.mp4"))
    shutil.copy(GOOD, os.path.join(d, "locked", "inner.mp4"))
    os.chmod(os.path.join(d, "noread.mp4"), 0)
    os.chmod(os.path.join(d, "locked"), 0)
    os.chmod(base, 0o755)
    os.chmod(d, 0o755)
    out = os.path.join(base, "perm-out")
    os.makedirs(out)
    os.chmod(out, 0o777)
    p = run(["audit", "--no-progress", "--report", os.path.join(out, "r.json"), d], user=65534, dfmon=dfmon,
            models=models)
    rep = json.load(open(os.path.join(out, "r.json")))
    by = {i["source"]: i for i in rep["inputs"]}
    errs = [i for i in rep["inputs"] if i["status"] == "error"]
    oks = [i for i in rep["inputs"] if i["status"] == "ok"]
    if p.returncode != 2 or len(oks) != 1 or not oks[0]["source"].endswith("ok.mp4"):
        fail("unreadable: exit %d, inputs %s" % (p.returncode, by))
    if not any("noread.mp4" in (e["error"] or "") for e in errs) or not any("locked" in (e["error"] or "") for e in errs):
        fail("unreadable file and directory must both be named: %s" % errs)
    result("audit unreadable file + dir", "exit 2, both named, readable clip audited")


def audit_deleted_during_run():
    d = os.path.join(WORK, "deleted")
    os.makedirs(d)
    # 20 inputs ahead of c.mp4 (~0.3 s each here), so it is still waiting its turn when it is deleted.
    before = ["b%02d.mp4" % i for i in range(20)]
    for n in before + ["c.mp4"]:
        shutil.copy(GOOD, os.path.join(d, n))
    report = os.path.join(WORK, "deleted.json")
    proc = subprocess.Popen([DFMON, "--models", MODELS, "audit", "--no-progress", "--jobs", "1", "--report", report] +
                            [os.path.join(d, n) for n in before + ["c.mp4"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    os.unlink(os.path.join(d, "c.mp4"))
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("audit hung after an input was deleted")
    if proc.returncode != 2:
        fail("deleted input: exit %d\n%s" % (proc.returncode, err[-2000:]))
    rep = inputs_by_name(json.load(open(report)))
    if any(rep[n]["status"] != "ok" for n in before):
        fail("deleting c.mp4 disturbed the others: %s" % {n: rep[n]["status"] for n in before})
    if rep["c.mp4"]["status"] != "error" or "c.mp4" not in rep["c.mp4"]["error"]:
        fail("deleted c.mp4: %s" % rep["c.mp4"])
    result("audit input deleted mid-run", "exit 2, " + rep["c.mp4"]["error"].split(": ", 1)[-1][:60])


def audit_unwritable_report():
    for target, why in ((os.path.join(WORK, "no", "such", "dir", "r.json"), "missing dir"),
                        ("/proc/self/r.json", "read-only fs")):
        p = run(["audit", "--no-progress", "--report", target, "--html", target + ".html", GOOD])
        if p.returncode != 2 or target not in p.stderr:
            fail("unwritable report (%s): exit %d, stderr %r" % (why, p.returncode, p.stderr[-500:]))
        parent = os.path.dirname(target)
        if os.path.isdir(parent) and any(f.startswith(".r.json") for f in os.listdir(parent)):
            fail("temporary file left behind in %s" % parent)
        if os.path.exists(target):
            fail("partial report written to %s" % target)
        result("audit --report to " + why, "exit 2 after %.1f s, path named, no partial file" % p.elapsed)


def audit_sigterm():
    # Enough inputs that the signal lands mid-run however fast the audit is (a copy takes ~0.3 s here).
    d = os.path.join(WORK, "term")
    os.makedirs(d)
    n = 40
    for i in range(n):
        shutil.copy(GOOD, os.path.join(d, "clip%02d.mp4" % i))
    report = os.path.join(WORK, "term.json")
    proc = subprocess.Popen([DFMON, "--models", MODELS, "audit", "--no-progress", "--report", report,
                             "--html", report + ".html", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    took = terminate(proc, "audit", 30)
    if proc.returncode != 2:
        fail("SIGTERM during audit: exit %d (expected 2: inputs not audited)" % proc.returncode)
    rep = json.load(open(report))  # complete, parseable: written atomically after the workers stopped
    # Inputs not started say "not audited (interrupted)", the one in progress "audit interrupted at T s".
    interrupted = [i for i in rep["inputs"] if "interrupted" in (i.get("error") or "")]
    others = [i["source"] for i in rep["inputs"] if i not in interrupted and i.get("status") != "ok"]
    if not interrupted or len(rep["inputs"]) != n or others:
        fail("SIGTERM report: %d inputs, %d interrupted, neither ok nor interrupted: %s" %
             (len(rep["inputs"]), len(interrupted), others))
    if not open(report + ".html").read().rstrip().endswith("</html>"):
        fail("HTML report incomplete after SIGTERM")
    if any(f.startswith(".") for f in os.listdir(WORK)):
        fail("temporary files left after SIGTERM: %s" % os.listdir(WORK))
    result("audit SIGTERM mid-run", "exit 2 in %.2f s, %d/%d inputs marked interrupted, reports complete" %
           (took, len(interrupted), n))


# ---------------------------------------------------------------------------------------------------
class NoiseHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()
        rnd = random.Random(5)
        try:
            for _ in range(400):
                self.wfile.write(bytes(rnd.getrandbits(8) for _ in range(4096)))
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *a):
        pass


def watch_garbage_streams():
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), NoiseHandler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    udp_port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_port.bind(("127.0.0.1", 0))
    port = udp_port.getsockname()[1]
    udp_port.close()
    stop = threading.Event()

    def udp_noise():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rnd = random.Random(6)
        while not stop.is_set():
            s.sendto(bytes(rnd.getrandbits(8) for _ in range(1316)), ("127.0.0.1", port))
            time.sleep(0.005)

    threading.Thread(target=udp_noise, daemon=True).start()
    events = os.path.join(WORK, "watch-events.jsonl")
    cfg = os.path.join(WORK, "watch.yaml")
    open(cfg, "w").write("""
server: {listen: "127.0.0.1:0"}
models: {dir: "%s"}
scoring: {fps: 5}
reconnect: {initial_s: 0.5, max_s: 2}
streams:
  - {id: good, uri: "%s", loop: true}
  - {id: http-noise, uri: "http://127.0.0.1:%d/feed.mp4"}
  - {id: udp-noise, uri: "udp://127.0.0.1:%d"}
  - {id: refused, uri: "rtsp://127.0.0.1:9/none", transport: tcp}
  - {id: missing-file, uri: "%s/missing.mp4"}
sinks:
  - {type: file, path: "%s", types: [score, stream_state, alert_start, alert_end]}
""" % (MODELS, GOOD, httpd.server_address[1], port, WORK, events))
    log = open(os.path.join(WORK, "watch.log"), "w")
    proc = subprocess.Popen([DFMON, "watch", "--config", cfg], stdout=subprocess.DEVNULL, stderr=log)
    # This case used to wedge every GStreamer pipeline at once now and then (all streams 'connecting', even
    # the refused RTSP port): a GObject type-registration deadlock between the HTTP and UDP sources, fixed
    # by LiveSource::create loading them first. If nothing moves past 'connecting' after 10 s, keep the
    # threads' stacks for the failure message.
    started, wedged = time.time(), None
    while time.time() - started < 25 and proc.poll() is None:
        time.sleep(1)
        if wedged is None and time.time() - started >= 10:
            evs = [json.loads(l) for l in open(events).read().splitlines() if l.endswith("}")] \
                if os.path.exists(events) else []
            # missing-file fails before any GStreamer pipeline exists: it says nothing about a wedge.
            if not any(e["type"] == "score" or e.get("state") not in (None, "connecting")
                       for e in evs if e["stream"] != "missing-file"):
                wedged = "no stream past 'connecting' after 10 s; threads then:\n" + describe_process(proc.pid)
                print("   " + wedged.splitlines()[0], flush=True)
            else:
                wedged = ""
    if proc.poll() is not None:
        fail("watch exited early (%s) with garbage streams:\n%s" % (proc.returncode, open(log.name).read()[-3000:]))
    sigterm_at = time.time()
    took = terminate(proc, "watch", 20, log.name)
    stop.set()
    httpd.shutdown()
    if proc.returncode != 0:
        fail("watch exit %d after SIGTERM:\n%s" % (proc.returncode, open(log.name).read()[-3000:]))
    lines = open(events).read().splitlines()
    evs = [json.loads(l) for l in lines]  # every line complete: the sink flushed before exit
    good_scores = [e for e in evs if e["type"] == "score" and e["stream"] == "good"]
    # ~5 a second on an idle machine; an instrumented build beside other tests gets ~1.
    if len(good_scores) < 10:
        fail("the good stream scored only %d faces beside the garbage streams\n%s" % (len(good_scores), wedged or ""))
    if calendar.timegm(time.strptime(good_scores[-1]["time"][:19], "%Y-%m-%dT%H:%M:%S")) < sigterm_at - 8:
        fail("the good stream stopped scoring before SIGTERM (last score %s)" % good_scores[-1]["time"])
    seqs = [e["seq"] for e in evs]
    if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
        fail("file sink seq not increasing")
    for sid in ("http-noise", "udp-noise", "refused", "missing-file"):
        st = [e for e in evs if e["type"] == "stream_state" and e["stream"] == sid]
        bad = [e for e in st if e["state"] in ("retrying", "failed")]
        if not bad or not all(e.get("reason") for e in bad):
            fail("stream %s: no retrying/failed state with a reason: %s" % (sid, st))
        if any(e["type"] == "score" and e["stream"] == sid for e in evs):
            fail("garbage stream %s produced scores" % sid)
        result("watch stream " + sid, "%s x%d: %s" % (bad[0]["state"], len(bad), bad[0]["reason"][:70]))
    result("watch good stream beside them", "%d score events in 25 s, SIGTERM -> exit 0 in %.2f s" %
           (len(good_scores), took))


# ---------------------------------------------------------------------------------------------------
def broken_models():
    base = os.path.join(WORK, "models")
    cards = [f for f in sorted(os.listdir(MODELS)) if f.endswith(".json") and f != "expected.json"]
    card0 = json.load(open(os.path.join(MODELS, cards[0])))
    onnx0 = card0.get("file") or cards[0].replace(".json", ".onnx")

    def edit_card(d, fn):
        c = json.load(open(os.path.join(d, cards[0])))
        fn(c)
        json.dump(c, open(os.path.join(d, cards[0]), "w"))

    def variant(name, mutate):
        d = os.path.join(base, name)
        shutil.copytree(MODELS, d)
        mutate(d)
        p = run(["audit", "--no-progress", GOOD], timeout=120, models=d)
        return p

    cases = [
        ("missing onnx", lambda d: os.unlink(os.path.join(d, onnx0)), onnx0),
        ("corrupt onnx", lambda d: open(os.path.join(d, onnx0), "r+b").write(b"\x00garbage" * 64), onnx0),
        ("truncated onnx", lambda d: open(os.path.join(d, onnx0), "r+b").truncate(100), onnx0),
        ("card is not json", lambda d: open(os.path.join(d, cards[0]), "w").write("{not json"), cards[0]),
        ("card with 3 labels", lambda d: edit_card(d, lambda c: c["output"].update(labels=["real", "fake", "x"])), cards[0]),
        ("card mean of length 2", lambda d: edit_card(d, lambda c: c["input"].update(mean=[0.5, 0.5])), cards[0]),
        ("card with 1 channel", lambda d: edit_card(d, lambda c: c["input"].update(channels=1)), cards[0]),
        ("card fake_index 5", lambda d: edit_card(d, lambda c: c["output"].update(fake_index=5)), cards[0]),
        ("empty dir", lambda d: [os.unlink(os.path.join(d, f)) for f in os.listdir(d)], "no model"),
    ]
    for name, mutate, needle in cases:
        p = variant(name.replace(" ", "_"), mutate)
        msg = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
        if p.returncode != 2:
            fail("models %s: exit %d (expected 2)\n%s" % (name, p.returncode, p.stderr[-1500:]))
        if needle not in p.stderr:
            fail("models %s: error does not name %r:\n%s" % (name, needle, p.stderr[-1500:]))
        result("models " + name, "exit 2: " + msg[-90:])


def broken_configs():
    d = os.path.join(WORK, "configs")
    os.makedirs(d)
    good_stream = '{id: cam, uri: "%s", loop: true}' % GOOD
    cases = {
        "unknown_key": ("server: {listen: '127.0.0.1:0', colour: blue}\nstreams: [%s]\n" % good_stream, "colour"),
        "wrong_type": ("scoring: {fps: fast}\nstreams: [%s]\n" % good_stream, "scoring.fps"),
        "duplicate_ids": ("streams: [%s, %s]\n" % (good_stream, good_stream), "cam"),
        "bad_uri": ("streams: [{id: cam, uri: 'gopher://x/y'}]\n", "gopher"),
        "out_of_range": ("scoring: {alert: {on: 1.5}}\nstreams: [%s]\n" % good_stream, "on"),
        "no_streams": ("server: {listen: '127.0.0.1:0'}\n", "streams"),
        "not_yaml": ("streams: [ {id: cam\n", "watch"),
        "public_no_token": ("server: {listen: '0.0.0.0:0'}\nstreams: [%s]\n" % good_stream, "token"),
    }
    for name, (text, needle) in sorted(cases.items()):
        path = os.path.join(d, name + ".yaml")
        open(path, "w").write(text)
        p = run(["watch", "--config", path, "--duration", "5"], timeout=60)
        if p.returncode != 2:
            fail("config %s: exit %d (expected 2)\n%s" % (name, p.returncode, p.stderr[-1500:]))
        if needle not in p.stderr and path not in p.stderr and name + ".yaml" not in p.stderr:
            fail("config %s: error names neither %r nor the file:\n%s" % (name, needle, p.stderr[-1500:]))
        result("config " + name, "exit 2 in %.1f s: %s" % (p.elapsed, p.stderr.strip().splitlines()[-1][-80:]))


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    only = os.environ.get("DFM_FAULTS_ONLY", "")
    cases = [audit_corpus, audit_hostile_names, audit_unreadable, audit_deleted_during_run, audit_unwritable_report, audit_sigterm,
             broken_models, broken_configs, watch_garbage_streams]
    for c in cases:
        if only and c.__name__ not in only.split(","):
            continue
        print("--", c.__name__, flush=True)
        c()
    print("PASS: %d fault cases" % len(results))


if __name__ == "__main__":
    main()
