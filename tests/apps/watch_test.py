#!/usr/bin/python3
"""End-to-end test of `dfmon watch`: a real RTSP server (gst-rtsp-server helper) and a looping file,
a real WebSocket client, HTTP /healthz and /metrics, server loss and return, token auth, SIGTERM.

usage: watch_test.py DFMON RTSP_SERVER MODELS_DIR SAMPLE_CLIP WORKDIR [--model-alerts FAKE_CLIP]

With --model-alerts the models are the real bundled ones and the test also checks that a clip with a
synthetic fake face raises alert_start then alert_end while the real clip raises none.
"""
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from testutil import signal_unblocked_thread  # noqa: E402

TOKEN = "s3cret-token"


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def start_rtsp(server_bin, clip, port):
    p = subprocess.Popen([server_bin, "--port", str(port), "--mount", "/cam", "--file", clip, "--loop"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    m = re.search(r"READY (rtsp://127\.0\.0\.1:(\d+)/cam)", line)
    if not m:
        p.kill()
        fail("RTSP server did not start: %r" % line)
    return p, m.group(1), int(m.group(2))


def start_dfmon(dfmon, config, log_path):
    log = open(log_path, "w")
    p = subprocess.Popen([dfmon, "--log-level", "info", "watch", "--config", config], stdout=subprocess.DEVNULL,
                         stderr=log, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            fail("dfmon watch exited early with %s:\n%s" % (p.returncode, open(log_path).read()))
        m = re.search(r"serving ws://(127\.0\.0\.1:\d+)/alerts", open(log_path).read())
        if m:
            return p, m.group(1)
        time.sleep(0.2)
    p.kill()
    fail("dfmon watch did not report its address:\n" + open(log_path).read())


def http_get(addr, path):
    with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=5) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def parse_metrics(text):
    """Minimal Prometheus text parser: every sample line is `name{labels} value`."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$', line)
        if not m:
            fail("metrics line does not parse: %r" % line)
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


async def expect_401(url, headers=None):
    try:
        async with websockets.connect(url, extra_headers=headers or {}, open_timeout=10):
            fail("upgrade succeeded without a valid token: " + url)
    except websockets.exceptions.InvalidStatusCode as e:
        if e.status_code != 401:
            fail("expected 401, got %d" % e.status_code)


async def collect(ws, until, timeout, seen):
    """Reads events into `seen` until until(seen) is true; fails after timeout seconds."""
    deadline = time.time() + timeout
    while not until(seen):
        left = deadline - time.time()
        if left <= 0:
            return False
        try:
            msg = await asyncio.wait_for(ws.recv(), timeout=left)
        except asyncio.TimeoutError:
            return False
        ev = json.loads(msg)
        for key in ("schema", "type", "seq", "time"):
            if key not in ev:
                fail("event without %s: %s" % (key, msg))
        if ev["schema"] != "dfmon.event/1":
            fail("bad schema: " + msg)
        if ev["type"] == "score":
            for key in ("stream", "pts_s", "track", "score", "raw", "models", "bbox"):
                if key not in ev:
                    fail("score event without %s: %s" % (key, msg))
            if not (0 <= ev["score"] <= 1 and 0 <= ev["raw"] <= 1) or len(ev["bbox"]) != 4:
                fail("score event out of range: " + msg)
        if seen["last_seq"] is not None and ev["seq"] <= seen["last_seq"]:
            fail("seq not increasing: %s after %s" % (ev["seq"], seen["last_seq"]))
        seen["last_seq"] = ev["seq"]
        seen["events"].append(ev)
    return True


def states(seen, stream):
    return [e["state"] for e in seen["events"] if e["type"] == "stream_state" and e["stream"] == stream]


def scores(seen, stream, after=0):
    return [e for e in seen["events"][after:] if e["type"] == "score" and e["stream"] == stream]


async def plumbing(args, work):
    dfmon, rtsp_bin, models, clip = args[:4]
    rtsp, rtsp_url, port = start_rtsp(rtsp_bin, clip, 0)
    config = os.path.join(work, "monitor.yaml")
    with open(config, "w") as f:
        f.write("""server: {listen: "127.0.0.1:0", token: "%s"}
models: {dir: "%s", use: [tiny_a, tiny_b], batch: 4}
detector: {max_width: 480, detect_every: 3}
scoring: {fps: 4}
reconnect: {initial_s: 0.5, max_s: 2}
streams:
  - {id: rtsp-cam, uri: "%s", transport: tcp}
  - {id: file-loop, uri: "file://%s", loop: true}
sinks:
  - {type: websocket, types: [alert_start, alert_end, stream_state, score]}
  - {type: file, path: "%s", types: [alert_start, alert_end, stream_state]}
""" % (TOKEN, os.path.abspath(models), rtsp_url, os.path.abspath(clip), os.path.join(work, "events.jsonl")))
    proc, addr = start_dfmon(dfmon, config, os.path.join(work, "dfmon.log"))
    try:
        status, ctype, body = http_get(addr, "/healthz")
        health = json.loads(body)
        if status != 200 or "streams" not in health or len(health["streams"]) != 2:
            fail("/healthz: %s %s" % (status, body))
        # The tiny models' cards record no real-deepfake figure: models listed, no caution.
        if [m["name"] for m in health.get("models", [])] != ["tiny_a", "tiny_b"] or health.get("caution", 0) is not None:
            fail("/healthz models/caution: %s / %r" % (health.get("models"), health.get("caution", "missing")))
        try:
            http_get(addr, "/nope")
            fail("unknown path did not 404")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                fail("unknown path gave %d" % e.code)
        await expect_401("ws://%s/alerts" % addr)
        await expect_401("ws://%s/alerts?token=wrong" % addr)
        await expect_401("ws://%s/alerts" % addr, {"Authorization": "Bearer wrong"})
        url = "ws://%s/alerts?types=stream_state,score,alert_start,alert_end" % addr
        async with websockets.connect(url, extra_headers={"Authorization": "Bearer " + TOKEN}, open_timeout=10) as ws:
            seen = {"events": [], "last_seq": None}
            # The connection may come after the first `live` state: /healthz tells the state then.
            ok = await collect(ws, lambda s: len(scores(s, "rtsp-cam")) >= 3 and len(scores(s, "file-loop")) >= 3, 60, seen)
            if not ok:
                fail("no score events from both streams within 60 s; got %d events" % len(seen["events"]))
            health = json.loads(http_get(addr, "/healthz")[2])
            live = {s["id"]: s["state"] for s in health["streams"]}
            if live != {"rtsp-cam": "live", "file-loop": "live"}:
                fail("/healthz states: %s" % live)
            print("both streams live and scored: %d events" % len(seen["events"]), flush=True)

            rtsp.kill()
            rtsp.wait()
            mark = len(seen["events"])
            ok = await collect(ws, lambda s: "retrying" in states(s, "rtsp-cam") and len(scores(s, "file-loop", mark)) >= 3,
                               40, seen)
            if not ok:
                fail("after the RTSP server died: states %s, file-loop scores %d" %
                     (states(seen, "rtsp-cam"), len(scores(seen, "file-loop", mark))))
            retry = [e for e in seen["events"] if e["type"] == "stream_state" and e["state"] == "retrying"][0]
            if "rtsp-cam" not in retry["reason"]:
                fail("retrying reason does not name the stream: %s" % retry)
            print("rtsp-cam retrying (%s), file-loop kept scoring" % retry["reason"], flush=True)

            rtsp, _, _ = start_rtsp(rtsp_bin, clip, port)
            mark = len(seen["events"])
            ok = await collect(ws, lambda s: "live" in [e["state"] for e in s["events"][mark:]
                                                         if e["type"] == "stream_state" and e["stream"] == "rtsp-cam"]
                               and len(scores(s, "rtsp-cam", mark)) >= 1, 60, seen)
            if not ok:
                fail("rtsp-cam did not come back live: %s" % states(seen, "rtsp-cam"))
            print("rtsp-cam live again after the server returned", flush=True)

            metrics = parse_metrics(http_get(addr, "/metrics")[2])
            faces = metrics.get('dfmon_faces_scored_total{stream="file-loop"}', 0)
            if faces <= 0:
                fail("faces_scored did not move: %s" % {k: v for k, v in metrics.items() if "faces" in k})
            if not any(k.startswith("dfmon_inference_latency_seconds_bucket") for k in metrics):
                fail("no inference latency histogram in /metrics")
            print("metrics ok: file-loop faces scored %d" % faces, flush=True)

            t0 = time.time()
            # Delivered to a thread that does not block it (OpenBLAS starts its pool before main), as
            # the kernel may do with a kill(): it must still be a clean stop, not the default action.
            tid = signal_unblocked_thread(proc.pid, signal.SIGTERM)
            if tid is None:
                proc.send_signal(signal.SIGTERM)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=10)
            except websockets.exceptions.ConnectionClosed as e:
                if e.rcvd is None or e.rcvd.code != 1001:
                    fail("expected a close frame with code 1001 (going away), got %s" % e.rcvd)
            rc = proc.wait(timeout=10)
            if rc != 0:
                fail("dfmon exited %d after SIGTERM" % rc)
            print("SIGTERM%s: close frame 1001, exit 0 in %.1f s" %
                  (" (to thread %d, signals unblocked)" % tid if tid else "", time.time() - t0), flush=True)
        lines = [json.loads(l) for l in open(os.path.join(work, "events.jsonl"))]
        if not any(e["type"] == "stream_state" for e in lines):
            fail("file sink wrote no stream_state events")
    finally:
        for p in (proc, rtsp):
            if p.poll() is None:
                p.kill()


async def model_alerts(args, work, fake_clip):
    """Real models: the synthetic fake clip raises alert_start then alert_end; the real clip none."""
    dfmon, _, models, clip = args[:4]
    config = os.path.join(work, "alerts.yaml")
    with open(config, "w") as f:
        f.write("""server: {listen: "127.0.0.1:0"}
models: {dir: "%s"}
scoring: {fps: 5}
streams:
  - {id: fake, uri: "file://%s", loop: false}
  - {id: real, uri: "file://%s", loop: false}
sinks:
  - {type: websocket}
""" % (os.path.abspath(models), os.path.abspath(fake_clip), os.path.abspath(clip)))
    proc, addr = start_dfmon(dfmon, config, os.path.join(work, "alerts.log"))
    try:
        async with websockets.connect("ws://%s/alerts" % addr, open_timeout=10) as ws:
            seen = {"events": [], "last_seq": None}
            await collect(ws, lambda s: states(s, "fake").count("eos") and states(s, "real").count("eos"), 90, seen)
            proc.send_signal(signal.SIGTERM)
            try:
                while True:
                    await collect(ws, lambda s: False, 10, seen)
                    break
            except websockets.exceptions.ConnectionClosed:
                pass
        proc.wait(timeout=15)
        kinds = {s: [e["type"] for e in seen["events"] if e.get("stream") == s and e["type"].startswith("alert")]
                 for s in ("fake", "real")}
        print("alerts:", kinds, flush=True)
        if kinds["fake"][:2] != ["alert_start", "alert_end"]:
            fail("the synthetic fake clip did not raise alert_start then alert_end: %s" % kinds["fake"])
        if kinds["real"]:
            fail("the real clip raised alerts: %s" % kinds["real"])
    finally:
        if proc.poll() is None:
            proc.kill()


def main():
    args = sys.argv[1:]
    if len(args) < 5:
        print(__doc__)
        sys.exit(2)
    work = args[4]
    os.makedirs(work, exist_ok=True)
    if "--model-alerts" in args:
        asyncio.run(model_alerts(args, work, args[args.index("--model-alerts") + 1]))
    else:
        asyncio.run(plumbing(args, work))
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
