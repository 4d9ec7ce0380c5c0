"""Helpers shared by the Python end-to-end tests (imported with tests/tools on sys.path)."""
import os
import socket
import sys


def fail(msg):
    """Fails the test with one line ctest shows."""
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def free_port():
    """A TCP port on 127.0.0.1 free right now (servers started by the tests bind it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


NOBODY = 65534


def nobody_can_reach(path):
    """Whether uid 65534 can traverse to `path` (a checkout under a 0700 directory, as `mktemp -d` makes,
    cannot be read by another user)."""
    import subprocess
    r = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "test", "-x",
                        path], capture_output=True)
    return r.returncode == 0


def stage_for_nobody(dfmon, models, work):
    """Tests that drop to uid 65534 (to make files unreadable even though CI runs as root) need the binary,
    the models and their work dir reachable by that user. When the checkout is not, they are copied into a
    fresh world-readable directory under /tmp, removed when the test process exits (the staged sanitizer
    binary alone is ~300 MB; CI filled the disk with them once); ones a killed test left behind are
    removed after 6 hours. Returns (dfmon, models, work) to use."""
    import atexit
    import shutil
    import tempfile
    if all(nobody_can_reach(p) for p in (os.path.dirname(dfmon), models, work)):
        return dfmon, models, work
    import glob
    import time
    for stale in glob.glob(os.path.join(tempfile.gettempdir(), "dfm-nobody-*")):  # left by a killed test
        try:
            if time.time() - os.path.getmtime(stale) > 6 * 3600:
                shutil.rmtree(stale, True)
        except OSError:
            pass
    base = tempfile.mkdtemp(prefix="dfm-nobody-")
    atexit.register(shutil.rmtree, base, True)
    os.chmod(base, 0o755)
    staged_bin = os.path.join(base, "dfmon")
    shutil.copy2(dfmon, staged_bin)
    staged_models = os.path.join(base, "models")
    shutil.copytree(models, staged_models)
    staged_work = os.path.join(base, "work")
    os.makedirs(staged_work)
    for d, _, files in os.walk(base):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o755 if f == "dfmon" else 0o644)
    return staged_bin, staged_models, staged_work


def describe_process(pid):
    """What a hung process is doing, for the failure message: each thread's name, state and kernel wait
    channel, then the threads' stacks when gdb is installed (it is not a dependency)."""
    import shutil
    import subprocess
    lines = []
    try:
        for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
            base = "/proc/%d/task/%s/" % (pid, tid)
            try:
                comm = open(base + "comm").read().strip()
                state = open(base + "stat").read().rsplit(")", 1)[1].split()[0]
                wchan = open(base + "wchan").read().strip() or "-"
            except OSError:
                continue
            lines.append("  thread %s %-16s %s %s" % (tid, comm, state, wchan))
    except OSError as e:
        return "cannot inspect pid %d: %s" % (pid, e)
    if shutil.which("gdb"):
        try:
            r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex", "thread apply all bt 25"],
                               capture_output=True, text=True, timeout=120)
            lines.append(r.stdout[-20000:])
        except subprocess.TimeoutExpired:
            lines.append("  (gdb timed out)")
    return "\n".join(lines)


def signal_unblocked_thread(pid, sig):
    """Sends `sig` to one thread of `pid`, other than the main one, that does not block it (such as a
    library's pool started before main), the way the kernel may deliver a process-directed signal.
    Returns the thread id, or None (then nothing was sent)."""
    import ctypes
    for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
        if int(tid) == pid:
            continue
        try:
            status = open("/proc/%d/task/%s/status" % (pid, tid)).read()
        except OSError:
            continue
        blocked = int(status.split("SigBlk:")[1].split()[0], 16)
        if not blocked & (1 << (sig - 1)):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.syscall(234, pid, int(tid), sig) == 0:  # tgkill (x86_64)
                return int(tid)
    return None
