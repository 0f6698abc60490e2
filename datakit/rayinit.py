"""Starting (or joining) Ray for any datakit verb: the corpus runner and the trainer.

Three things a person at a terminal should never meet:

- **A hang.** Ray's daemons (GCS, raylet) are started as children of the driver and the
  raylet forks every worker, each in a process group of its own; their children inherit what
  they inherit. An inherited terminal on stdin is a trap: a worker's child that touches it
  (importing ``scenedetect`` runs ``ffmpeg -v quiet``, and ffmpeg sets the terminal's
  attributes) is stopped by SIGTTOU because its process group is not the terminal's
  foreground group, and the job waits forever. The daemons start with stdin on /dev/null.
- **Chatter.** Ray's INFO lines, its worker output and deprecation notices stay in Ray's logs
  (the session's ``logs`` folder, named when something fails) unless ``verbose``.
- **Leftovers.** A driver killed with SIGKILL leaves Ray processes and a session folder
  behind. Every embedded session records its driver; the next start stops the processes of
  sessions whose driver is gone and removes their folders.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("datakit")

#: written into each embedded Ray session folder: which datakit driver owns it
DRIVER_MARK = "datakit-driver.json"


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


def init_ray(address: str | None = None, num_cpus: int | None = None, verbose: bool = False) -> None:
    """Join the cluster at ``address`` (``auto`` or HOST:PORT), or start a fresh local Ray.

    ``address=None`` always starts a new embedded Ray (``address="local"``), never one that a
    ``ray start`` left running on this machine. Before that, what killed datakit drivers left
    behind is cleaned up (and said).
    """
    import ray

    if ray.is_initialized():
        return
    if not verbose:
        from ray.util.annotations import RayDeprecationWarning

        warnings.simplefilter("ignore", RayDeprecationWarning)
    kwargs = dict(logging_level=logging.DEBUG if verbose else logging.WARNING, log_to_driver=verbose)
    with stdin_detached():
        if address:
            ray.init(address=address, **kwargs)
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            clean_up_killed_runs()
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **kwargs)
            _mark_session()
    if not verbose:
        from .console import filter_native_logs

        filter_native_logs()


def quiet_ray_data(verbose: bool = False) -> None:
    """Ray Data's console lines (banners, "execution finished", the tracebacks of tasks the job
    tolerates) only with ``verbose``; its log file in the session's logs folder keeps them all,
    and datakit says itself what went wrong."""
    import ray.data  # noqa: F401  (configures the "ray.data" logger on import)

    for h in logging.getLogger("ray.data").handlers:
        if not isinstance(h, logging.FileHandler):
            h.setLevel(logging.INFO if verbose else logging.CRITICAL)


def ray_temp_root() -> str:
    """Where a local Ray puts its session folders (``$RAY_TMPDIR/ray``, else ``$TMPDIR/ray`` on
    Linux, else ``/tmp/ray``), as Ray itself decides it."""
    try:
        from ray._common.utils import get_default_ray_temp_dir

        return get_default_ray_temp_dir()
    except ImportError:
        return os.path.join(os.environ.get("RAY_TMPDIR") or "/tmp", "ray")


def session_dir() -> str | None:
    """The folder of the Ray session this driver is connected to (its ``logs`` are in it)."""
    try:
        import ray._private.worker as rw

        return rw._global_node.get_session_dir_path() if rw._global_node is not None else None
    except Exception:  # noqa: BLE001 - only used for messages and bookkeeping
        return None


def logs_dir() -> str | None:
    d = session_dir()
    return os.path.join(d, "logs") if d else None


def _mark_session() -> None:
    """Say which driver owns the session; a driver that ends normally takes the mark away,
    so a mark whose driver is gone means the driver was killed."""
    d = session_dir()
    if not d:
        return
    import atexit

    import psutil

    me = psutil.Process()
    mark = Path(d, DRIVER_MARK)
    with contextlib.suppress(OSError):
        mark.write_text(json.dumps({"pid": me.pid, "create_time": me.create_time()}))
        atexit.register(lambda: mark.unlink(missing_ok=True))


def abandon() -> None:
    """Arrange for this driver's own Ray processes (the local GCS, raylet, their agents and
    workers) to be stopped just after the driver has ended, and take the session's mark away.

    For a driver that must end now (Ctrl-C) while Ray's threads still run: stopping Ray's
    processes under those threads makes Ray end the process on its own terms (exit 1, with
    messages). So a detached ``sh`` stops them half a second later, after ``os._exit``."""
    import subprocess

    import psutil

    d = session_dir()
    pids = [str(p.pid) for p in psutil.Process().children(recursive=True)]
    if pids:
        ids = " ".join(pids)
        subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -TERM {ids} 2>/dev/null; sleep 3; kill -KILL {ids} 2>/dev/null"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True)
    if d:
        with contextlib.suppress(OSError):
            Path(d, DRIVER_MARK).unlink()


@dataclass
class Reaped:
    driver_pid: int
    session: str
    stopped: list[int] = field(default_factory=list)

    def describe(self) -> str:
        n = len(self.stopped)
        return (f"stopped {n} leftover Ray process{'es' if n != 1 else ''}, " if n else "") + \
            f"removed its Ray session {self.session}"


def _driver_alive(mark: dict) -> bool:
    import psutil

    try:
        p = psutil.Process(int(mark["pid"]))
        return abs(p.create_time() - float(mark["create_time"])) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError, TypeError):
        return False


def session_processes(session: str) -> list:
    """Processes of this user with a file open, or their working directory, inside ``session``."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "uids"]):
        if p.pid == os.getpid():
            continue
        try:
            paths = [f.path for f in p.open_files()]
            with contextlib.suppress(psutil.Error):
                paths.append(p.cwd())
        except psutil.Error:
            continue
        if any(x == session or x.startswith(session + os.sep) for x in paths):
            found.append(p)
    return found


def clean_up_killed_runs() -> None:
    """:func:`reap_dead_sessions`, saying what was cleaned up. A job on the embedded Ray does this
    before it reads what its output already holds: a killed driver's workers can outlive it and
    still commit a batch, which the rerun would otherwise process a second time."""
    for r in reap_dead_sessions():
        log.warning("cleaned up after an earlier datakit run that was killed (pid %d): %s", r.driver_pid,
                    r.describe())


def reap_dead_sessions(temp_root: str | None = None) -> list[Reaped]:
    """Stop the processes and remove the folders of datakit's embedded Ray sessions whose
    driver is no longer alive. Sessions of other programs (no mark) are never touched."""
    import psutil

    root = Path(temp_root or ray_temp_root())
    reaped = []
    for mark_file in sorted(root.glob(f"session_*/{DRIVER_MARK}")):
        try:
            mark = json.loads(mark_file.read_text())
        except (OSError, ValueError):
            continue
        if _driver_alive(mark):
            continue
        session = str(mark_file.parent)
        r = Reaped(int(mark.get("pid", -1)), session)
        procs = session_processes(session)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGKILL)
                r.stopped.append(p.pid)
        psutil.wait_procs(procs, timeout=5)
        time.sleep(0.1)
        shutil.rmtree(session, ignore_errors=True)
        reaped.append(r)
    return reaped
