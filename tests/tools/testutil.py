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
    fresh world-readable directory under /tmp. Returns (dfmon, models, work) to use."""
    import shutil
    import tempfile
    if all(nobody_can_reach(p) for p in (os.path.dirname(dfmon), models, work)):
        return dfmon, models, work
    base = tempfile.mkdtemp(prefix="dfm-nobody-")
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
