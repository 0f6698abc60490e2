"""Ray's native log lines are dropped from a terminal's stderr; everything else passes at once."""
import subprocess
import sys

from conftest import REPO

SCRIPT = r"""
import os, sys, time
from datakit.console import NativeLogFilter
f = NativeLogFilter().start()
os.write(2, b"[2026-12-01 04:34:28,302 E 5683 5683] core_worker.cc:2465: Actor with class name ...\n")
os.write(2, b"kept line\n")
os.write(2, b"\rprogress 50%")                       # a partial line that cannot be Ray's: at once
time.sleep(0.2)
os.write(2, b"\n[2026-12-01 04:34")                  # the start of a native line, split in two writes
os.write(2, b":28,302 W 1 2] raylet.cc:1: chatter\n")
print("[100%] done", file=sys.stderr)
f.stop()
print("after stop", file=sys.stderr)
"""


def test_native_lines_are_dropped_and_the_rest_passes():
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "core_worker" not in err and "raylet.cc" not in err
    assert err == "kept line\n\rprogress 50%\n[100%] done\nafter stop\n"
