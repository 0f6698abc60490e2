"""The terminal a verb talks to while Ray runs in its process.

Ray's C++ core inside the driver prints its own log lines straight to file descriptor 2
(``[2026-12-01 04:34:28,302 E 5683 5683] core_worker.cc:2465: ...``), including alarming
ones about normal operation; they are in Ray's log files as well. :class:`NativeLogFilter`
sits on descriptor 2 and drops exactly those lines, passing everything else through at
once (progress redraws included). It is started after Ray's daemons are up, so they and
their workers keep the real stderr. In a `datakit` command (:func:`claim_stderr`) it runs
whether stderr is a terminal, a pipe or a log file; a library caller's stderr is left alone
unless it is a terminal. ``-v`` keeps every line.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading

#: the prefix of a line written by Ray's C++ logging
NATIVE_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [DIWEF] \d+ \d+\] ")
_MAYBE_NATIVE = re.compile(rb"^\[[\d\- :,DIWEF]{0,40}$")     # a partial line that may become one


class NativeLogFilter:
    """Drops Ray's native log lines from this process's stderr until :meth:`stop`."""

    def __init__(self):
        self.saved: int | None = None
        self._read: int | None = None
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def start(self) -> "NativeLogFilter":
        sys.stderr.flush()
        self.saved = os.dup(2)
        self._read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._thread = threading.Thread(target=self._pump, name="datakit-stderr", daemon=True)
        self._thread.start()
        return self

    def _emit(self, data: bytes) -> None:
        while data:
            try:
                n = os.write(self.saved, data)
            except OSError:
                return
            data = data[n:]

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                if pending:
                    self._emit(pending)
                break
            pending += chunk
            out = []
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if NATIVE_LINE.match(line):
                    self.dropped += 1
                else:
                    out.append(line + b"\n")
            if pending and not _MAYBE_NATIVE.match(pending) and not NATIVE_LINE.match(pending):
                out.append(pending)          # a partial line that cannot be Ray's: show it now
                pending = b""
            if out:
                self._emit(b"".join(out))

    def stop(self) -> None:
        if self.saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.saved, 2)               # closes the pipe's only write end: the pump drains and ends
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self.saved)
        if self._read is not None:
            os.close(self._read)
        self.saved = self._read = None


_FILTER: NativeLogFilter | None = None
_WAS_TTY: bool | None = None
_CLAIMED = False


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (also while the filter has put a pipe in its place)."""
    return _WAS_TTY if _WAS_TTY is not None else os.isatty(2)


def restore_stderr() -> None:
    """Put the real stderr back now (what was written so far is shown first)."""
    if _FILTER is not None:
        _FILTER.stop()


def claim_stderr() -> None:
    """This process is a `datakit` command: its stderr (terminal, pipe or log file) carries
    datakit's own messages only, and :func:`filter_native_logs` applies to it."""
    global _CLAIMED
    _CLAIMED = True


def filter_native_logs() -> None:
    """Hide Ray's native log lines for the rest of the process (they stay in Ray's log files):
    always in a `datakit` command, else only when stderr is a terminal."""
    global _FILTER, _WAS_TTY
    if _FILTER is not None or not (_CLAIMED or os.isatty(2)):
        return
    import atexit

    _WAS_TTY = os.isatty(2)
    _FILTER = NativeLogFilter().start()
    atexit.register(_FILTER.stop)


@contextlib.contextmanager
def ctrl_c_guard(repeat_s: float = 1.0):
    """Make sure a Ctrl-C inside the block ends it.

    Python raises ``KeyboardInterrupt`` in whatever the main thread runs when the signal
    arrives, and that can be a finaliser (``__del__``; Ray and Ray Data have several), where
    the exception is printed as "ignored" and dropped: the job would go on as if nothing was
    pressed. So after a Ctrl-C, the interrupt is raised again every ``repeat_s`` seconds until
    it has left the block. Outside the main thread, or where SIGINT is not Python's default
    (ignored in a background job, or a caller's own handler), nothing changes."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    left, repeating = threading.Event(), threading.Event()
    main = threading.main_thread().ident

    def again() -> None:      # a real signal to the main thread: it also ends a blocking wait
        while not left.wait(repeat_s):
            signal.pthread_kill(main, signal.SIGINT)

    def pressed(signum, frame):
        if not repeating.is_set():
            repeating.set()
            threading.Thread(target=again, name="datakit-ctrl-c", daemon=True).start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, pressed)
    try:
        yield
    finally:
        left.set()
        if signal.getsignal(signal.SIGINT) is pressed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
