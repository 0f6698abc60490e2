"""The live view of a corpus job: what a person at a terminal watches while `run` works.

Two sources feed it. Workers report each batch a stage finished to a small Ray actor
(:class:`Board`: records in, out, rejected per stage), so stages deep in the pipeline show
progress long before anything reaches the sink. The driver reports what reaches the sink
(:meth:`LiveView.finished`), which is what ``kept`` and ``rejected`` count, and from which
sources are known to be complete, so that the time left can be estimated.

On a terminal the view is redrawn in place a few times a second; elsewhere (logs, CI) it
prints one line now and then. Rendering is a pure function of the counts (:func:`render`).
"""
from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


# ---------------------------------------------------------------- worker side

class Board:
    """Per-stage counters, held by one Ray actor; workers add, the driver reads."""

    def __init__(self):
        self.stages: dict[str, list[int]] = {}

    def add(self, stage: str, n_in: int, n_out: int, n_rejected: int) -> None:
        c = self.stages.setdefault(stage, [0, 0, 0])
        c[0] += n_in
        c[1] += n_out
        c[2] += n_rejected

    def snapshot(self) -> dict[str, list[int]]:
        return self.stages


def start_board():
    """The board actor (no CPU of its own) for one job."""
    import ray

    return ray.remote(num_cpus=0, max_restarts=-1)(Board).remote()


def report_progress(board, stage: str, n_in: int, n_out: int, n_rejected: int) -> None:
    """Tell the board about one finished batch (fire and forget; a lost report only
    costs a count on the screen)."""
    if board is None:
        return
    try:
        board.add.remote(stage, n_in, n_out, n_rejected)
    except Exception:  # noqa: BLE001 - progress must never fail the work
        pass


# ---------------------------------------------------------------- driver side

@dataclass
class Counts:
    """What the driver knows; everything :func:`render` shows."""

    pipeline: str
    stages: list[str]
    listed: int = 0                 # sources listed so far
    listing_done: bool = False
    skipped: int = 0                # sources an earlier run completed
    kept: int = 0                   # samples that reached the sink
    rejected: int = 0               # reject rows that reached the sink (sources or clips)
    reasons: Counter = field(default_factory=Counter)
    clips_made: int = 0             # clips cut, over the sources that reached the sink
    # sources with some but not all records at the sink (a finished source is dropped, so the
    # driver's memory does not grow with the number of sources)
    clips_of: dict[str, int] = field(default_factory=dict)      # source id -> clips cut (after split)
    seen_of: dict[str, int] = field(default_factory=dict)       # source id -> records that reached the sink
    sources_done: int = 0
    per_stage: dict[str, list[int]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def fraction(self) -> float | None:
        """Share of this run's sources that is done (partly done sources count in part)."""
        todo = self.listed - self.skipped
        if todo <= 0 or not self.listing_done:
            return None
        partial = sum(min(1.0, self.seen_of[s] / n) for s, n in self.clips_of.items()
                      if n and s in self.seen_of and self.seen_of[s] < n)
        return min(1.0, (self.sources_done + partial) / todo)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def render(c: Counts, now: float | None = None, width: int = 100, final: bool = False) -> list[str]:
    """The view as lines of text (no colours, no cursor codes)."""
    elapsed = (now if now is not None else time.monotonic()) - c.started
    f = c.fraction()
    left = ""
    if final:
        left = " · done"
    elif f is not None and f >= 1.0:
        left = " · finishing"
    elif f and f > 0 and elapsed > 2:
        left = f" · ~{_clock(elapsed * (1 - f) / f)} left"
    listed = f"{c.listed}{'' if c.listing_done else '+'} listed"
    skipped = f" · {c.skipped} already done" if c.skipped else ""
    clips = c.clips_made
    lines = [f"{c.pipeline}: {_clock(elapsed)} elapsed{left}",
             f"  sources {listed}{skipped} · {c.sources_done} done    "
             f"clips {clips} made · {c.kept} kept · {c.rejected} rejected"]
    cells = []
    for name in c.stages:
        n_in, n_out, n_rej = c.per_stage.get(name, [0, 0, 0])
        rej = f" ({n_rej} rejected)" if n_rej else ""
        cells.append(f"{name} {n_in}→{n_out}{rej}")
    row = "  "
    for cell in cells:
        if len(row) + len(cell) + 3 > width and row.strip():
            lines.append(row.rstrip())
            row = "  "
        row += cell + "   "
    if row.strip():
        lines.append(row.rstrip())
    if c.reasons:
        top = ", ".join(f"{r} {n}" for r, n in c.reasons.most_common(4))
        lines.append(f"  rejects: {top}")
    return [line[:width] for line in lines]


class LiveView:
    """Keeps the counts and draws them: in place on a terminal, as a line now and then elsewhere."""

    def __init__(self, pipeline: str, stages: list[str], stream=None, enabled: bool = True,
                 interval: float | None = None, board=None):
        self.counts = Counts(pipeline, stages)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        if stream is None:
            from .console import stderr_is_terminal

            self.tty = enabled and stderr_is_terminal()
        else:
            self.tty = enabled and hasattr(stream, "isatty") and stream.isatty()
        self.interval = interval if interval is not None else (0.5 if self.tty else 30.0)
        self.board = board
        self._drawn = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # what the driver learns
    def listed(self, n: int = 1) -> None:
        with self._lock:
            self.counts.listed += n

    def listing_done(self, skipped: int = 0) -> None:
        with self._lock:
            self.counts.listing_done = True
            self.counts.skipped = skipped

    def finished(self, source_id: str | None, source_clips: int | None, key: str, reason: str | None) -> None:
        """A record reached the sink: a sample (``reason`` None) or a reject."""
        c = self.counts
        with self._lock:
            if reason is None:
                c.kept += 1
            else:
                c.rejected += 1
                c.reasons[reason] += 1
            if source_id is None:
                return
            if key == source_id or not source_clips:      # the whole source, rejected before split
                c.sources_done += 1
                return
            if source_id not in c.clips_of:
                c.clips_of[source_id] = source_clips
                c.clips_made += source_clips
            c.seen_of[source_id] = c.seen_of.get(source_id, 0) + 1
            if c.seen_of[source_id] >= source_clips:
                c.sources_done += 1
                del c.clips_of[source_id], c.seen_of[source_id]

    # drawing
    def start(self) -> "LiveView":
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="datakit-progress", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.draw()

    def _poll_board(self) -> None:
        if self.board is None:
            return
        try:
            import ray

            snap = ray.get(self.board.snapshot.remote(), timeout=2)
        except Exception:  # noqa: BLE001 - the board is best effort
            return
        with self._lock:
            self.counts.per_stage = {k: list(v) for k, v in snap.items()}

    def draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        self._poll_board()
        with self._lock:
            lines = render(self.counts, final=final)
        try:
            if self.tty:
                up = f"\x1b[{self._drawn}F" if self._drawn else ""
                self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J")
                self._drawn = len(lines)
            else:
                self.stream.write(" | ".join(x.strip() for x in lines[:2]) + "\n" if not final else
                                  "\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        """Stop redrawing and leave the final state on the screen."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.enabled:
            self.draw(final=True)
