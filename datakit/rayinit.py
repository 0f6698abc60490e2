"""Starting (or joining) Ray for any datakit verb: the corpus runner and the trainer.

Ray's daemons (GCS, raylet) are started as children of the driver and the raylet forks
every worker; each worker sits in a process group of its own. Whatever they inherit, their
children inherit too. When the driver runs at an interactive terminal, an inherited terminal
on stdin is a trap: a worker's child that touches it (importing ``scenedetect`` runs
``ffmpeg -v quiet``, and ffmpeg sets the terminal's attributes) is stopped by SIGTTOU
because its process group is not the terminal's foreground group, and the job hangs
forever. So the daemons are started with stdin on ``/dev/null``; the driver keeps its own.
"""
from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger("datakit")


@contextlib.contextmanager
def stdin_detached():
    """Point file descriptor 0 at ``/dev/null`` for the duration (processes started inside
    inherit that instead of the terminal), then restore it."""
    try:
        saved = os.dup(0)
    except OSError:          # no stdin at all: nothing to inherit
        yield
        return
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(devnull)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` (``auto`` or HOST:PORT), or start a fresh local Ray.

    ``address=None`` always starts a new embedded Ray (``address="local"``), never one that a
    ``ray start`` left running on this machine.
    """
    import ray

    if ray.is_initialized():
        return
    kwargs = dict(logging_level=logging.WARNING, log_to_driver=True)
    with stdin_detached():
        if address:
            ray.init(address=address, **kwargs)
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **kwargs)
