"""The verbs of the ``datakit`` command, one module per family; ``datakit.cli`` assembles them."""
from __future__ import annotations

import sys

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    """Print a one-line reason and return the exit code."""
    print(f"datakit: error: {msg}", file=sys.stderr)
    return code


class status:
    """A one-line status for work that may take a while: on a terminal, after ``after`` seconds
    it shows ``TEXT… 12s`` and keeps the seconds moving; the line is cleared at the end.
    Elsewhere (pipes, logs) it stays silent. ``set(text)`` changes the text as work moves on."""

    def __init__(self, text: str, quiet: bool = False, after: float = 2.0, stream=None):
        self.text, self.after = text, after
        self.stream = stream or sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._shown = False

    def set(self, text: str) -> None:
        self.text = text

    def __enter__(self) -> "status":
        import threading
        import time

        self._t0 = time.monotonic()
        self._stop = threading.Event()
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="datakit-status")
            self._thread.start()
        return self

    def _loop(self) -> None:
        import time

        while not self._stop.wait(0.5):
            elapsed = time.monotonic() - self._t0
            if elapsed >= self.after:
                self.stream.write(f"\r\x1b[2K{self.text}… {elapsed:.0f}s")
                self.stream.flush()
                self._shown = True

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join(timeout=2)
            if self._shown:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
