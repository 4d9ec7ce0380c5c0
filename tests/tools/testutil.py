"""Helpers shared by the Python end-to-end tests (imported with tests/tools on sys.path)."""
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
