"""Shared fixtures: real sample clips (SPEC §11) and small videos made with PyAV."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO = Path(__file__).resolve().parents[1]

#: Overrides for tests of job mechanics (resume, rejects, clusters): the shipped demo with
#: the cheap bicubic LR, so the many runs stay fast. The demo as shipped runs in test_pipeline.
FAST = ["synthetic.profile=bicubic"]


def pattern_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth moving gradients with a square: compressible, and every frame differs."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        out[i, ..., 0] = (xx * 255 // max(1, w - 1) + 3 * i + seed) % 256
        out[i, ..., 1] = (yy * 255 // max(1, h - 1)) % 256
        out[i, ..., 2] = 128
        y0, x0 = (2 * i) % max(1, h // 2), (3 * i) % max(1, w // 2)
        out[i, y0:y0 + h // 4, x0:x0 + w // 4] = 255
    return out


def write_video(path: Path, frames: np.ndarray, fps: float = 25, codec: str = "libx264",
                pix_fmt: str = "yuv420p", rotation: int | None = None, pts: list[int] | None = None,
                time_base: Fraction | None = None, options: dict | None = None) -> Path:
    """Write frames with PyAV; ``pts``/``time_base`` make variable frame rate files."""
    t, h, w, _ = frames.shape
    with av.open(str(path), mode="w", options=options or {}) as out:
        s = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if time_base is not None:
            s.time_base = time_base
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(t):
            f = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            if pts is not None:
                f.pts, f.time_base = pts[i], time_base
            else:
                f.pts, f.time_base = i, Fraction(1) / Fraction(fps).limit_denominator(1001)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    rate = 16000
    with av.open(str(path), mode="w", format="mp4") as out:
        s = out.add_stream("aac", rate=rate)
        n = int(rate * seconds)
        samples = (np.sin(np.arange(n) / 10.0) * 0.3).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def shared_once(tmp_path_factory, name: str, make) -> Path:
    """``make(folder)`` once per test run, shared by the parallel test workers (pytest-xdist):
    the first worker to get here makes it under a lock, the others wait and reuse it. Keys hash
    the source path, so everything compared across tests must come from the same folders."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent                      # pytest-N/, above each worker's popen-gwK/
    folder, done = base / name, base / f"{name}.done"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if folder.exists():                 # a worker that failed half-way: start again
                import shutil
                shutil.rmtree(folder)
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """The real sample videos with caption sidecars, as `datakit samples` writes them."""
    from datakit.samples import write_samples

    return shared_once(tmp_path_factory, "samples", write_samples)


def cli_env(**extra) -> dict:
    """The environment of a `datakit` command run by a test: no inherited cluster address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(RAY_AUTH_MODE="disabled", **extra)
    return env


def kill_at_first_commit(argv: list[str], out: Path) -> None:
    """Start ``argv`` (a `datakit` job writing ``out``) and SIGKILL it and the local Ray it started as
    soon as its first batch is committed (a manifest appears); fail if it ends or finishes first.

    Ray's workers run in process groups of their own and outlive their driver for a moment (a
    writer may still commit a batch): they are stopped too (as the next datakit run on this
    machine would), so what ``out`` holds on return is what the rerun finds."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(argv, cwd=REPO, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and not list(out.glob("manifests/*.parquet")):
            assert proc.poll() is None, "the job ended before it could be interrupted"
            time.sleep(0.05)
        assert list(out.glob("manifests/*.parquet")), "no batch was committed in time"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        from datakit.rayinit import reap_dead_sessions

        reap_dead_sessions()
    assert not (out / "meta" / "summary.json").exists(), "the job finished before the kill"


def kill_then_resume(argv: list[str], out: Path, points: tuple[str, ...], marks_dir: Path, committed,
                     **env) -> object:
    """A `datakit` job killed after its first commit (:func:`kill_at_first_commit`), then rerun with a
    worker killed inside the writer once at each of ``points`` (Ray retries the task). Returns what
    ``committed(out)`` read between the two; ``env``: extra variables of the rerun."""
    import subprocess

    kill_at_first_commit(argv, out)
    early = committed(out)
    marks = [marks_dir / f"fired-{p}" for p in points]
    faults = ",".join(f"write:{p}:{m}" for p, m in zip(points, marks))
    r = subprocess.run([*argv, "--set", "ray.max_retries=4"], cwd=REPO, env=cli_env(DATAKIT_FAULT_INJECT=faults, **env),
                       capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    assert all(m.exists() for m in marks), "a fault did not happen"
    return early


@pytest.fixture(scope="session")
def demo_fast_run(sample_dir, tmp_path_factory) -> Path:
    """``datakit run pipelines/demo.yaml --set FAST`` on the samples, once for the session: the
    clean key sets (samples, rejects, clip index) that the resume and build tests compare with.
    Read only: copy it before writing into it."""
    import subprocess
    import sys

    def make(folder: Path) -> None:
        r = subprocess.run([sys.executable, "-m", "datakit.cli", "run", "pipelines/demo.yaml", "--input",
                            str(sample_dir), "--output", str(folder / "out"), "-q",
                            *[a for o in FAST for a in ("--set", o)]],
                           capture_output=True, text=True, timeout=400, env=cli_env(), cwd=REPO)
        assert r.returncode == 0, r.stderr[-2000:]

    return shared_once(tmp_path_factory, "demo_fast", make) / "out"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the in-process runs of the whole test session."""
    import ray

    from datakit.runner import init_ray
    from datakit.spec import RayConfig

    init_ray(RayConfig(num_cpus=2), progress=False)
    yield ray
    ray.shutdown()


#: The longest modules, longest first (seconds from ``pytest --durations=0`` on a 2-core machine,
#: end of 2026): the order in which `make test` hands whole modules to its test processes starts
#: with these, so the short modules fill in at the end instead of one process finishing a long
#: module while the other waits. Only a schedule: any order gives the same results.
LONGEST_MODULES = ["test_cli", "test_curation", "test_train", "test_cluster", "test_train_dist", "test_terminal",
                   "test_sdedit_smoke", "test_reproduce", "test_pipeline", "test_s3"]


def pytest_collection_modifyitems(config, items):
    rank = {f"tests/{name}.py": i for i, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
