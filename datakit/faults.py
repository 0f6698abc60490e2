"""Resilience tests only: end a worker process at a chosen place, as a crash would.

``DATAKIT_FAULT_INJECT`` holds comma-separated entries ``WHERE:WHAT[:ONCE_FILE]``:

- ``STAGE:TEXT`` (e.g. ``extract:carphone``): the stage meets a source whose URI contains TEXT;
- ``write:POINT``: the writer reaches POINT of a shard's commit (``after_tar``,
  ``after_rejects``, ``after_index``, ``before_manifest``).

``DATAKIT_STAGE_SLEEP=STAGE:SECONDS[:TEXT][,...]`` (parallelism tests): every batch of STAGE
(with TEXT: holding a source whose URI contains TEXT) takes SECONDS longer, so that tasks which
may run at the same time do overlap.

``DATAKIT_STAGE_LOG=DIR`` (accounting for tests): every stage appends the key of each record it
processes to ``DIR/STAGE-PID.log``, so a test can count how often a clip was scored.

With ``ONCE_FILE`` the entry fires once (while that file does not exist yet; firing creates
it), so a retried task gets through; without, it fires every time.
"""
from __future__ import annotations

import os
import time

EXIT_CODE = 70


def _entries() -> list[list[str]]:
    spec = os.environ.get("DATAKIT_FAULT_INJECT", "")
    return [e.split(":", 2) for e in spec.split(",") if e.count(":") >= 1]


def maybe_crash(where: str, matches) -> None:
    """End this process if an entry for ``where`` matches (``matches(WHAT)`` is true)."""
    for entry in _entries():
        if entry[0] != where or not matches(entry[1]):
            continue
        if len(entry) == 3:
            try:
                os.close(os.open(entry[2], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
        os._exit(EXIT_CODE)


def log_processed(stage: str, keys: list[str]) -> None:
    """Append ``keys`` to ``$DATAKIT_STAGE_LOG/STAGE-PID.log`` when that variable is set."""
    folder = os.environ.get("DATAKIT_STAGE_LOG")
    if not folder or not keys:
        return
    with open(os.path.join(folder, f"{stage}-{os.getpid()}.log"), "a", encoding="utf-8") as f:
        f.write("".join(k + "\n" for k in keys))


def maybe_stall(stage: str, uris: list[str]) -> None:
    """Sleep as long as ``$DATAKIT_STAGE_SLEEP`` asks for ``stage`` and these source ``uris``."""
    for entry in os.environ.get("DATAKIT_STAGE_SLEEP", "").split(","):
        name, seconds, text = (entry.split(":", 2) + ["", ""])[:3]
        if name == stage and seconds and any(text in u for u in uris):
            time.sleep(float(seconds))
