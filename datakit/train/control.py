"""Stopping a training run cleanly: Ctrl-C, or a request file any process can write.

A stop request makes every worker finish the optimizer step it is in, write a checkpoint
at that step and return; the command then exits 130 with one line. The request is a flag
in the process that got the signal and the file ``OUTPUT/STOP`` (written by the same
handler, or by hand on a cluster: ``touch OUTPUT/STOP``), which worker 0 polls after each
step; the workers agree on the step to stop at through one all-reduce, so all of them stop
together. A second Ctrl-C stops at once: the steps since the last checkpoint are lost and
the message says how many. The request file is removed when a run starts.
"""
from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager

from .. import fsio

log = logging.getLogger("datakit.train")

STOP_FILE = "STOP"


class TrainingInterrupted(Exception):
    """Training stopped before its end; ``checkpoint`` holds the state at ``step`` or ``lost`` steps were lost."""

    def __init__(self, step: int, checkpoint: str | None, lost: int = 0):
        self.step, self.checkpoint, self.lost = step, checkpoint, lost
        if checkpoint:
            msg = f"interrupted after step {step}: checkpoint {checkpoint} written; rerun the same command to resume"
        else:
            msg = (f"interrupted at step {step}: {lost} step(s) since the last checkpoint lost; rerun the same "
                   "command to resume from it")
        super().__init__(msg)


class StopRequest:
    """A request to stop after the current step: set here (:meth:`request`) or as ``OUTPUT/STOP``."""

    def __init__(self, output: str):
        self.uri = fsio.join(fsio.normalize(output), STOP_FILE)
        self.flag = threading.Event()

    def request(self) -> None:
        """Ask every worker to stop after its current step (also workers in other processes)."""
        self.flag.set()
        try:
            fsio.write_atomic(self.uri, b"stop requested\n")
        except OSError as e:     # the in-process flag still works
            log.warning("could not write the stop request %s: %s", self.uri, e)

    def requested(self, poll_file: bool = True) -> bool:
        return self.flag.is_set() or (poll_file and fsio.exists(self.uri))

    def clear(self) -> None:
        self.flag.clear()
        if fsio.exists(self.uri):
            fsio.delete(self.uri)


@contextmanager
def interrupt_requests_stop(stop: StopRequest):
    """While inside: the first SIGINT requests a stop, the second raises KeyboardInterrupt.

    Only the main thread can install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.flag.is_set():
            raise KeyboardInterrupt
        print("datakit: stopping after the current step (Ctrl-C again to stop now and lose it)", flush=True)
        stop.request()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def sigint_ignored():
    """Child processes started inside (data loader workers) ignore SIGINT: Ctrl-C is the trainer's to handle."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_sigint(*_args) -> None:
    """``worker_init_fn`` of the data loader: its processes leave Ctrl-C to the trainer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
