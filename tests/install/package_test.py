#!/usr/bin/env python3
"""Install test of the Debian package: scripts/package builds it, then
   1. dpkg-deb -I / -c: metadata, Depends, conffiles and the file layout;
   2. dpkg-deb -x into a temp root: the unpacked dfmon finds its bundled models and audits a clip;
   3. as root (CI): dpkg -i, dfmon from /usr/bin audits with /usr/share/dfmon/models, the unit file is
      valid, man page present, then dpkg --purge. Skipped when not root or dfmon is already installed.
usage: package_test.py SOURCE_DIR WORK_DIR"""
import json
import os
import shutil
import subprocess
import sys

SKIP = 77


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def run(cmd, timeout=900, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        fail("%s -> %d\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-3000:]))
    return p


def audit_ok(dfmon, clip, work, expect_models_prefix):
    out = os.path.join(work, "report.json")
    env = {k: v for k, v in os.environ.items() if k != "DFMON_MODELS"}
    p = run([dfmon, "audit", clip, "--report", out, "--no-progress"], check=False, cwd=work, env=env)
    if p.returncode not in (0, 1):
        fail("audit with the packaged binary exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    rep = json.load(open(out))
    names = sorted(m["name"] for m in rep["models"])
    if names != ["resnet18", "vit"]:
        fail("packaged audit used models %s" % names)
    # Which directory the binary resolved on its own (no --models, no DFMON_MODELS), with its self-check.
    env = {k: v for k, v in os.environ.items() if k != "DFMON_MODELS"}
    listed = json.loads(run([dfmon, "models", "--json"], cwd=work, env=env).stdout)
    if os.path.realpath(listed["dir"]) != os.path.realpath(expect_models_prefix):
        fail("packaged dfmon found models in %s, expected %s" % (listed["dir"], expect_models_prefix))
    inp = rep["inputs"][0]
    if inp["status"] != "ok" or not inp.get("tracks"):
        fail("packaged audit of %s: status %s, %d tracks" % (clip, inp["status"], len(inp.get("tracks", []))))
    return inp


def main():
    src, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = dict(os.environ, PKG_DIR=os.path.join(work, "build-pkg"))
    deb = run(["bash", os.path.join(src, "scripts", "package")], env=env, timeout=1800).stdout.strip().splitlines()[-1]
    print("package:", deb, "%.1f MB" % (os.path.getsize(deb) / 1e6), flush=True)

    info = run(["dpkg-deb", "-I", deb]).stdout
    for want in ("Package: dfmon", "Depends:", "libdlib-data", "libopencv-dnn", "gstreamer1.0-libav"):
        if want not in info:
            fail("control data lacks %r:\n%s" % (want, info))
    conff = run(["dpkg-deb", "-f", deb, "Package"]).stdout.strip()
    if conff != "dfmon":
        fail("package name %r" % conff)
    ctrl = os.path.join(work, "control")
    run(["dpkg-deb", "-e", deb, ctrl])
    if open(os.path.join(ctrl, "conffiles")).read().split() != ["/etc/dfmon/monitor.yaml"]:
        fail("conffiles: %r" % open(os.path.join(ctrl, "conffiles")).read())

    listing = run(["dpkg-deb", "-c", deb]).stdout
    files = {line.split()[-1].lstrip(".") for line in listing.splitlines() if line.strip()}
    for want in ("/usr/bin/dfmon", "/usr/share/dfmon/models/resnet18.onnx", "/usr/share/dfmon/models/vit.json",
                 "/etc/dfmon/monitor.yaml", "/usr/lib/systemd/system/dfmon.service",
                 "/usr/share/man/man1/dfmon.1.gz", "/usr/share/doc/dfmon/README.md"):
        if want not in files:
            fail("%s missing from the package:\n%s" % (want, listing))
    if any(f.startswith("/usr/local") or "/build" in f for f in files):
        fail("package holds build or /usr/local paths:\n%s" % listing)

    root = os.path.join(work, "root")
    run(["dpkg-deb", "-x", deb, root])
    dfmon = os.path.join(root, "usr", "bin", "dfmon")
    run([dfmon, "config", "check", os.path.join(root, "etc", "dfmon", "monitor.yaml")])
    clip = os.path.join(src, "samples", "clips", "synthetic_fake_d18.mp4")
    inp = audit_ok(dfmon, clip, work, os.path.join(root, "usr", "share", "dfmon", "models"))
    print("unpacked: audit ok, verdict %s (%.3f)" % (inp.get("verdict"), inp.get("score", 0)), flush=True)

    if os.geteuid() != 0 or shutil.which("dpkg") is None:
        print("not root: dpkg -i part skipped")
        return 0
    if run(["dpkg-query", "-W", "-f=${Status}", "dfmon"], check=False).stdout.startswith("install ok"):
        print("dfmon already installed on this machine: dpkg -i part skipped")
        return 0
    try:
        run(["dpkg", "-i", deb])
        inp = audit_ok("/usr/bin/dfmon", clip, work, "/usr/share/dfmon/models")
        run(["/usr/bin/dfmon", "config", "check", "/etc/dfmon/monitor.yaml"])
        man = run(["man", "-P", "cat", "dfmon"], check=False, env=dict(os.environ, MANWIDTH="100"))
        if man.returncode == 0 and "SUBCOMMANDS" not in man.stdout:
            fail("man dfmon lacks the SUBCOMMANDS section")
        if shutil.which("systemd-analyze"):
            v = run(["systemd-analyze", "verify", "/usr/lib/systemd/system/dfmon.service"], check=False)
            bad = [l for l in (v.stdout + v.stderr).splitlines() if "dfmon.service" in l and "Failed" in l]
            if bad:
                fail("systemd-analyze verify: %s" % "\n".join(bad))
        print("dpkg -i: /usr/bin/dfmon audit ok with /usr/share/dfmon/models", flush=True)
    finally:
        run(["dpkg", "--purge", "dfmon"], check=False)
    if os.path.exists("/usr/bin/dfmon") or os.path.exists("/etc/dfmon/monitor.yaml"):
        fail("dpkg --purge left files behind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
