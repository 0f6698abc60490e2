"""Ray's native log lines are dropped from a terminal's stderr; everything else passes at once."""
import os
import subprocess
import sys

import pytest

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


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # the dropped one, on purpose
def test_a_ctrl_c_dropped_by_a_finaliser_is_raised_again():
    """Python raises KeyboardInterrupt in whatever the main thread runs; in a ``__del__`` it is
    printed as "ignored" and dropped (the run once went on to the end after a Ctrl-C on CI)."""
    import gc
    import signal
    import time

    from datakit.console import ctrl_c_guard

    class Finaliser:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)      # Ctrl-C arrives while a finaliser runs
            for _ in range(10000):
                pass

    def drop_one():
        Finaliser()
        gc.collect()

    # Python's own Ctrl-C handling, also where the tests run with SIGINT ignored (in the background)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        drop_one()                                   # without the guard: dropped, nothing happens
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            with ctrl_c_guard(repeat_s=0.2):
                drop_one()
                time.sleep(5)
        assert time.monotonic() - t0 < 3
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
