"""Helpers shared by bench/failover.py and bench/rebalance.py."""
import socket
import subprocess
import time


def free_port():
    """A free TCP port on 127.0.0.1 (bound, read back, released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait(cond, secs, what, prog="bench"):
    """Polls cond() until true; exits with a message after secs seconds."""
    end = time.time() + secs
    while time.time() < end:
        try:
            if cond():
                return
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.05)
    raise SystemExit("%s: timed out waiting for %s" % (prog, what))
