"""What goes wrong with an output root, said in one line: the path and what to do."""
from __future__ import annotations

from dataclasses import dataclass

RERUN = "rerun the same command to re-make it"


class OutputError(RuntimeError):
    """An output root cannot be used; the message is one line naming the path and the fix."""


class NotAnOutput(OutputError):
    """The folder is not a datakit output, or one of another format version."""


class CorruptFile(OutputError):
    """A file of an output is damaged (unreadable Parquet, truncated tar, checksum mismatch)."""

    def __init__(self, uri: str, reason: str, fix: str = RERUN):
        super().__init__(f"{uri}: {reason}; {fix}")
        self.uri, self.reason, self.fix = uri, reason, fix


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an output: the batch it belongs to ("" for none), the file and why.

    ``damaged``: the batch's committed files cannot be trusted (a rerun deletes and re-makes
    them); otherwise the problem is a leftover of an interrupted run (a rerun removes it)."""

    batch: str
    file: str
    reason: str
    damaged: bool = True

    def line(self) -> str:
        return f"{self.file}: {self.reason}; " + (RERUN if self.damaged else "rerun the same command to clean it up")
