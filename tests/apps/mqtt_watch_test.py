#!/usr/bin/python3
"""End-to-end test of the MQTT sink of `dfmon watch`: a real mosquitto broker on 127.0.0.1, a looping
file stream with the tiny models, mosquitto_sub as the subscriber; broker restart; SIGTERM.

usage: mqtt_watch_test.py DFMON MODELS_DIR SAMPLE_CLIP WORKDIR
"""
import json
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tools"))
from testutil import fail, free_port  # noqa: E402

PREFIX = "e2e/site"



def find(name, extra=("/usr/sbin", "/usr/local/sbin")):
    path = shutil.which(name) or next((os.path.join(d, name) for d in extra if os.path.exists(os.path.join(d, name))), None)
    if not path:
        print("SKIP: %s is not installed" % name, flush=True)
        sys.exit(0)
    return path



def start_broker(work, port):
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        # As root mosquitto would switch to its own user; stay the test's user (see mqtt_sink_test.cpp).
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nuser %s\n"
                % (port, pwd.getpwuid(os.getuid()).pw_name))
    log = open(os.path.join(work, "mosquitto.log"), "a")
    p = subprocess.Popen([find("mosquitto"), "-c", conf, "-v"], stdout=log, stderr=log)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.1)
    p.kill()
    fail("mosquitto did not listen on %d" % port)


class Sub:
    """mosquitto_sub -v in the background; every `topic payload` line goes into a queue."""

    def __init__(self, port, topic, extra=()):
        self.p = subprocess.Popen([find("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-v",
                                   "-q", "1"] + list(extra), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            self.q.put((topic, payload))

    def collect(self, until, timeout, got):
        deadline = time.time() + timeout
        while not until(got):
            left = deadline - time.time()
            if left <= 0:
                return False
            try:
                topic, payload = self.q.get(timeout=left)
            except queue.Empty:
                return False
            try:
                ev = json.loads(payload)
            except ValueError:
                fail("payload on %s is not JSON: %r" % (topic, payload))
            if ev.get("schema") != "dfmon.event/1" or "seq" not in ev:
                fail("not a dfmon event on %s: %s" % (topic, payload))
            got.append((topic, ev))
        return True

    def stop(self):
        self.p.terminate()
        self.p.wait()


def on(got, topic, type_=None):
    return [ev for t, ev in got if t == topic and (type_ is None or ev["type"] == type_)]


def main():
    dfmon, models, clip, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    port = free_port()
    broker = start_broker(work, port)
    sub = Sub(port, PREFIX + "/#")
    time.sleep(0.5)  # mosquitto_sub has no "subscribed" signal; the retained state covers a late start anyway
    config = os.path.join(work, "monitor.yaml")
    with open(config, "w") as f:
        f.write("""server: {listen: "127.0.0.1:0"}
models: {dir: "%s", use: [tiny_a, tiny_b], batch: 4}
detector: {max_width: 480, detect_every: 3}
scoring: {fps: 4}
streams:
  - {id: file-loop, uri: "file://%s", loop: true}
sinks:
  - {type: websocket}
  - {type: mqtt, host: 127.0.0.1, port: %d, topic_prefix: "%s", qos: 1, client_id: dfmon-e2e,
     types: [alert_start, alert_end, stream_state, score]}
""" % (os.path.abspath(models), os.path.abspath(clip), port, PREFIX))
    log_path = os.path.join(work, "dfmon.log")
    proc = subprocess.Popen([dfmon, "--log-level", "info", "watch", "--config", config],
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    try:
        events_t, state_t = PREFIX + "/file-loop/events", PREFIX + "/file-loop/state"
        got = []
        ok = sub.collect(lambda g: len(on(g, events_t, "score")) >= 3 and
                         "live" in [e["state"] for e in on(g, state_t)], 90, got)
        if not ok:
            fail("no live state + 3 scores on %s within 90 s; got %s\n%s" %
                 (PREFIX, [t for t, _ in got][:20], open(log_path).read()[-3000:]))
        seqs = [ev["seq"] for t, ev in got if t == events_t]
        if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
            fail("seq on %s not increasing: %s" % (events_t, seqs))
        live = [e for e in on(got, events_t, "stream_state") if e["state"] == "live"]
        if not live or live[-1] != [e for e in on(got, state_t) if e["state"] == "live"][-1]:
            fail("the state topic does not carry the same JSON as the events topic")
        print("scores and the live state arrived: %d messages" % len(got), flush=True)

        # A late subscriber gets the retained state at once.
        late = subprocess.run([find("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-t", PREFIX + "/+/state",
                               "-v", "-C", "1", "-W", "10"], capture_output=True, text=True)
        topic, _, payload = late.stdout.strip().partition(" ")
        if topic != state_t or json.loads(payload or "{}").get("state") != "live":
            fail("late subscriber got %r" % late.stdout)
        print("late subscriber got the retained state", flush=True)

        # The broker goes away and comes back on the same port: the sink reconnects, events flow again.
        sub.stop()
        broker.kill()
        broker.wait()
        time.sleep(1.5)
        broker = start_broker(work, port)
        sub = Sub(port, PREFIX + "/#")
        got = []
        if not sub.collect(lambda g: len(on(g, events_t, "score")) >= 2, 60, got):
            fail("no scores after the broker restarted:\n" + open(log_path).read()[-3000:])
        if "connected again" not in open(log_path).read():
            fail("dfmon did not log the reconnection:\n" + open(log_path).read()[-3000:])
        print("events flow again after a broker restart", flush=True)

        addr = re.search(r"serving ws://(127\.0\.0\.1:\d+)/alerts", open(log_path).read()).group(1)
        with urllib.request.urlopen("http://%s/metrics" % addr, timeout=5) as r:
            metrics = r.read().decode()
        m = re.search(r'dfmon_sink_events_sent_total\{sink="mqtt:127\.0\.0\.1:%d"\} (\S+)' % port, metrics)
        if not m or float(m.group(1)) < 5:
            fail("mqtt sent counter missing or too low: %s" % (m.group(0) if m else "absent"))
        print("metrics: %s" % m.group(0), flush=True)

        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fail("dfmon watch did not stop within 30 s of SIGTERM")
        if rc != 0:
            fail("dfmon watch exited %d:\n%s" % (rc, open(log_path).read()[-3000:]))
        print("PASS", flush=True)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.stop()
        broker.kill()
        broker.wait()


if __name__ == "__main__":
    main()
