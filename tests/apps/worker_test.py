#!/usr/bin/python3
"""`dfmon audit --enqueue` + `dfmon worker` end to end against a real redis-server on 127.0.0.1.

usage: worker_test.py DFMON MODELS_DIR SAMPLES_DIR WORKDIR

Enqueues sample clips and two bad inputs, runs two workers, SIGKILLs one of them in the middle of a job
and checks: every job ends with exactly one stored result and one report file, the killed worker's job
was reclaimed and finished by the other worker, bad inputs are finished jobs with status "error",
nothing is left pending, exit codes are 0. Then SIGTERM mid-job: exit 0, the job is handed back
unacknowledged and the next worker finishes it. Bad URL and a server that is down fail fast with exit 2.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tools"))
from testutil import fail, free_port  # noqa: E402




class Redis:
    def __init__(self, work):
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.1)
        fail("redis-server did not start on port %d" % self.port)

    def cli(self, *args):
        p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)] + list(args), capture_output=True,
                           text=True, timeout=10)
        return p.stdout.strip()

    def hgetall(self, key):
        p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-raw", "HGETALL", key],
                           capture_output=True, text=True, timeout=10)
        # --no-raw quotes every value, so values with newlines stay on one line.
        vals = [json.loads(re.sub(r"^\d+\) ", "", line.strip())) for line in p.stdout.splitlines()
                if line.strip() and line.strip() != "(empty array)"]
        return dict(zip(vals[0::2], vals[1::2]))

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port


WORKERS = []


def start_worker(dfmon, models, url, name, work, extra=()):
    log = open(os.path.join(work, name + ".log"), "w")
    out = open(os.path.join(work, name + ".out"), "w")
    p = subprocess.Popen([dfmon, "--models", models, "worker", url, "--consumer", name, "--out",
                          os.path.join(work, "reports"), "--json"] + list(extra), stdout=out, stderr=log)
    p.logpath = log.name
    p.outpath = out.name
    WORKERS.append(p)
    return p


def read(path):
    with open(path) as f:
        return f.read()


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    fail("timed out after %ds waiting for %s" % (timeout, what))


def claimed_jobs(log):
    return re.findall(r"job (\S+) claimed", log)


def done_jobs(log):
    return re.findall(r"job (\S+) done", log)


def enqueue(dfmon, url, inputs, extra=()):
    p = subprocess.run([dfmon, "audit", "--enqueue", url, "--json"] + list(extra) + inputs, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def fleet(dfmon, models, samples, work, redis):
    clips = os.path.join(samples, "clips")
    good = [os.path.join(clips, c) for c in ("real_d18.mp4", "synthetic_fake_d18.mp4", "real_hamilton.mp4")]
    # Two copies of a clip, so that the killed worker is surely mid-job when it dies.
    copy = os.path.join(work, "copy", "real_d18_copy.mp4")
    os.makedirs(os.path.dirname(copy))
    shutil.copy(good[0], copy)
    zero = os.path.join(work, "zero.mp4")
    open(zero, "wb").close()
    missing = os.path.join(work, "missing.mp4")
    inputs = good + [os.path.dirname(copy), zero, missing]  # a directory expands like `dfmon audit`
    # Every frame analysed (25/s) keeps a clip busy for a second or more even on a fast machine.
    code, out, err = enqueue(dfmon, redis.url, inputs, ["--sample-fps", "25"])
    if code != 0:
        fail("enqueue exit %d: %s" % (code, err))
    doc = json.loads(out)
    if doc["schema"] != "dfmon.enqueue/1" or doc["errors"] or len(doc["jobs"]) != 6:
        fail("enqueue output: %s" % doc)
    jobs = {j["id"]: j["input"] for j in doc["jobs"]}
    if copy not in jobs.values() or len(set(jobs)) != 6:
        fail("directory not expanded / ids not unique: %s" % jobs)
    entry = redis.cli("XRANGE", "dfmon:jobs", "-", "+", "COUNT", "1")
    if "sample_fps" not in entry or "input" not in entry:
        fail("job fields: %s" % entry)
    # A job written by another tool with options dfmon does not know: a finished job with an error.
    bogus = redis.cli("XADD", "dfmon:jobs", "*", "input", good[0], "options", '{"bogus": 1}')
    jobs[bogus] = good[0]
    print("enqueued %d jobs" % len(jobs), flush=True)

    a = start_worker(dfmon, models, redis.url, "worker-a", work, ["--min-idle", "3"])
    b = start_worker(dfmon, models, redis.url, "worker-b", work, ["--min-idle", "3", "--drain"])
    # Kill A in the middle of its first real clip (bad inputs finish in milliseconds).
    slow = set(jobs) - {i for i, p in jobs.items() if p in (zero, missing)} - {bogus}
    victim = wait_for(lambda: next((j for j in claimed_jobs(read(a.logpath)) if j in slow), None), 120,
                      "worker-a to claim a clip")
    time.sleep(0.3)
    if victim in done_jobs(read(a.logpath)):
        fail("worker-a finished %s before it could be killed; the clip is too short for this machine" % victim)
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    print("killed worker-a in the middle of job %s (%s)" % (victim, os.path.basename(jobs[victim])), flush=True)
    if str(victim) not in redis.cli("XPENDING", "dfmon:jobs", "dfmon", "-", "+", "10", "worker-a"):
        fail("the killed worker's job is not pending at worker-a")

    t0 = time.time()
    try:
        rc = b.wait(timeout=240)
    except subprocess.TimeoutExpired:
        b.kill()
        fail("worker-b did not drain the stream:\n" + read(b.logpath)[-3000:])
    if rc != 0:
        fail("worker-b exit %d:\n%s" % (rc, read(b.logpath)[-3000:]))
    print("worker-b drained the stream and exited 0 (%.1fs after the kill)" % (time.time() - t0), flush=True)

    blog = read(b.logpath)
    if not re.search(r"job %s claimed: .*\(delivery 2, reclaimed\)" % re.escape(victim), blog):
        fail("worker-b did not reclaim %s:\n%s" % (victim, blog[-3000:]))
    lines = [json.loads(l) for l in read(b.outpath).splitlines() if l.strip()]
    by_job = {}
    for l in lines:
        by_job.setdefault(l["job"], []).append(l)
    reports = os.path.join(work, "reports")
    for jid, path in jobs.items():
        res = redis.hgetall("dfmon:jobs:result:" + jid)
        if not res:
            fail("no stored result for job %s (%s)" % (jid, path))
        if res["input"] != path or res["job"] != jid:
            fail("result of %s names %s" % (jid, res.get("input")))
        report_file = os.path.join(reports, jid + ".json")
        if res["report"] != report_file or not os.path.exists(report_file) or not os.path.exists(report_file[:-5] + ".html"):
            fail("report files of %s: %s" % (jid, res["report"]))
        report = json.load(open(report_file))
        if report["schema"] != "dfmon.audit/1" or len(report["inputs"]) != 1 or report["inputs"][0]["source"] != path:
            fail("report of %s: %s" % (jid, report.get("inputs")))
        stored = json.loads(res["result"])
        if stored["source"] != path or "timeline" in stored:
            fail("stored result JSON of %s: %s" % (jid, res["result"][:300]))
        if jid == bogus:
            if res["status"] != "error" or 'unknown key "bogus"' not in res["error"] or res["deliveries"] != "1":
                fail("job with unknown options: %s" % res)
        elif path in (zero, missing):
            if res["status"] != "error" or os.path.basename(path) not in res["error"] or res["deliveries"] != "1":
                fail("bad input %s: %s" % (path, res))
            if report["inputs"][0]["status"] != "error":
                fail("report of bad input %s is not an error" % path)
        else:
            if res["status"] != "ok" or res["verdict"] not in ("real", "fake", "no_faces"):
                fail("clip %s: %s" % (path, {k: res[k] for k in ("status", "error")}))
            if abs(float(res["score"]) - report["inputs"][0]["score"]) > 1e-5:
                fail("stored score %s differs from the report's %s" % (res["score"], report["inputs"][0]["score"]))
        if jid == victim:
            if res["consumer"] != "worker-b" or res["deliveries"] != "2":
                fail("the reclaimed job's result: consumer %s, deliveries %s" % (res["consumer"], res["deliveries"]))
        elif res["consumer"] == "worker-b" and len(by_job.get(jid, [])) != 1:
            fail("worker-b printed %d lines for %s" % (len(by_job.get(jid, [])), jid))
    results = redis.cli("XRANGE", "dfmon:jobs:results", "-", "+").split()
    finished = [results[i + 1] for i in range(len(results) - 1) if results[i] == "job"]
    if sorted(finished) != sorted(jobs):
        fail("results stream holds %s, expected each job once: %s" % (sorted(finished), sorted(jobs)))
    leftovers = sorted(f for f in os.listdir(reports) if not re.fullmatch(r"\d+-\d+\.(json|html)", f))
    if leftovers or len(os.listdir(reports)) != 2 * len(jobs):
        fail("report directory: %s" % sorted(os.listdir(reports)))
    pending = redis.cli("XPENDING", "dfmon:jobs", "dfmon").split()
    if pending[0] != "0" or redis.cli("XLEN", "dfmon:jobs") != "0" or redis.cli("XLEN", "dfmon:jobs:dead") != "0":
        fail("left behind: XPENDING %s, XLEN %s" % (pending, redis.cli("XLEN", "dfmon:jobs")))
    # worker-b retired itself; worker-a (killed) is still listed, with nothing pending.
    consumers = redis.cli("XINFO", "CONSUMERS", "dfmon:jobs", "dfmon")
    if "worker-b" in consumers:
        fail("worker-b did not leave the group on exit: %s" % consumers)
    print("%d jobs: one result + one report each; %s reclaimed by worker-b; nothing pending" % (len(jobs), victim),
          flush=True)


def sigterm(dfmon, models, samples, work, redis):
    clip = os.path.join(samples, "clips", "real_hamilton.mp4")
    code, out, err = enqueue(dfmon, redis.url + "?stream=term", [clip],
                             ["--out", os.path.join(work, "term"), "--sample-fps", "25"])
    if code != 0:
        fail("enqueue exit %d: %s" % (code, err))
    jid = json.loads(out)["jobs"][0]["id"]
    url = redis.url + "?stream=term"
    c = start_worker(dfmon, models, url, "worker-c", work, ["--min-idle", "600"])
    wait_for(lambda: jid in claimed_jobs(read(c.logpath)), 120, "worker-c to claim the job")
    time.sleep(0.5)
    c.send_signal(signal.SIGTERM)
    try:
        rc = c.wait(timeout=30)
    except subprocess.TimeoutExpired:
        c.kill()
        fail("worker-c did not stop within 30 s of SIGTERM")
    if rc != 0:
        fail("worker-c exit %d after SIGTERM:\n%s" % (rc, read(c.logpath)[-2000:]))
    if jid in done_jobs(read(c.logpath)):
        fail("worker-c finished the job before SIGTERM reached it; nothing was tested")
    if redis.hgetall("term:result:" + jid):
        fail("an interrupted job has a stored result")
    if redis.cli("XPENDING", "term", "dfmon").split()[0] != "1":
        fail("the interrupted job was acknowledged")
    # min-idle is 600 s: only the hand-back lets worker-d take it now; the interrupted attempt is not counted.
    d = start_worker(dfmon, models, url, "worker-d", work, ["--min-idle", "600", "--drain"])
    try:
        rc = d.wait(timeout=120)
    except subprocess.TimeoutExpired:
        d.kill()
        fail("worker-d did not finish the handed-back job:\n" + read(d.logpath)[-2000:])
    res = redis.hgetall("term:result:" + jid)
    if rc != 0 or res.get("consumer") != "worker-d" or res.get("deliveries") != "1" or res.get("status") != "ok":
        fail("after SIGTERM: worker-d exit %d, result %s" % (rc, {k: res.get(k) for k in ("consumer", "deliveries", "status")}))
    if res["report"] != os.path.join(work, "term", jid + ".json") or not os.path.exists(res["report"]):
        fail("the job's --out was not used: %s" % res["report"])
    print("SIGTERM: worker-c exited 0 without acking; worker-d finished the job (delivery 1) into the job's --out",
          flush=True)


def failures(dfmon, models, work, redis):
    t0 = time.time()
    p = subprocess.run([dfmon, "--models", models, "worker", "http://127.0.0.1:1"], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 2 or "http://127.0.0.1:1" not in p.stderr:
        fail("bad URL: exit %d, %s" % (p.returncode, p.stderr))
    port = free_port()
    down = "redis://127.0.0.1:%d" % port
    p = subprocess.run([dfmon, "--models", models, "worker", down], capture_output=True, text=True, timeout=30)
    if p.returncode != 2 or down not in p.stderr or "refused" not in p.stderr:
        fail("server down (worker): exit %d, %s" % (p.returncode, p.stderr))
    code, out, err = enqueue(dfmon, down, [os.path.join(work, "zero.mp4")])
    if code != 2 or down not in err:
        fail("server down (enqueue): exit %d, %s" % (code, err))
    code, out, err = enqueue(dfmon, redis.url, [os.path.join(work, "zero.mp4"), "--report", "r.json"])
    if code != 2 or "--enqueue" not in err:
        fail("--report with --enqueue: exit %d, %s" % (code, err))
    if time.time() - t0 > 30:
        fail("failing fast took %.1fs" % (time.time() - t0))
    print("bad URL, server down, --report with --enqueue: exit 2 with the URL named (%.1fs)" % (time.time() - t0),
          flush=True)


def main():
    if len(sys.argv) < 5:
        print(__doc__)
        sys.exit(2)
    dfmon, models, samples, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    redis = Redis(work)
    try:
        fleet(dfmon, models, samples, work, redis)
        sigterm(dfmon, models, samples, work, redis)
        failures(dfmon, models, work, redis)
    finally:
        for w in WORKERS:
            if w.poll() is None:
                w.kill()
                w.wait(timeout=10)
        redis.stop()
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
