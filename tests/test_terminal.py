"""The README's run command at a real (pseudo-)terminal, as a person types it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from datakit.verify import verify
from terminal import ffmpeg_dir, run_at_terminal

pytestmark = pytest.mark.slow

DATAKIT = str(Path(sys.executable).parent / "datakit")


@pytest.fixture()
def ray_tmp():
    """A Ray temp root of the test's own (short: Ray's socket paths have a length limit)."""
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="dkr", dir="/tmp")
    yield d
    subprocess.run(["pkill", "-KILL", "-f", d], check=False)
    shutil.rmtree(d, ignore_errors=True)


def _leftovers(root: str) -> list:
    from datakit.rayinit import session_processes

    return [p for s in Path(root, "ray").glob("session_2*") for p in session_processes(str(s))]


def test_ctrl_c_stops_the_job_in_one_line_and_leaves_no_ray_process(sample_dir, tmp_path, ray_tmp):
    out = tmp_path / "out"
    env = {"RAY_TMPDIR": ray_tmp}
    run = run_at_terminal([DATAKIT, "run", "pipelines/demo.yaml", "--input", str(sample_dir), "--output", str(out)],
                          cwd=REPO, env=env, timeout=240, ctrl_c_when="elapsed")
    assert run.status == 130, run.screen[-3000:]
    assert "Traceback" not in run.screen, run.screen[-3000:]
    said = [line for line in run.screen.splitlines() if "interrupted" in line]
    assert len(said) == 1 and "rerun the same command to resume" in said[0], said
    assert list(Path(ray_tmp, "ray").glob("session_2*")), "the run did not use the test's Ray temp root"
    deadline = time.time() + 20
    while _leftovers(ray_tmp) and time.time() < deadline:
        time.sleep(0.5)
    assert not _leftovers(ray_tmp)


def test_a_run_at_a_terminal_cleans_up_after_a_killed_driver_and_finishes(sample_dir, tmp_path, ray_tmp):
    """A driver killed mid-job leaves Ray processes and a session folder behind. The next run, typed
    at an interactive terminal (job control on, an ``ffmpeg`` on PATH that touches the terminal), says
    that it cleans them up, and finishes: Ray's workers and their children must not inherit the
    terminal (they used to stop forever on SIGTTOU)."""
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    cmd = [DATAKIT, "run", "pipelines/demo.yaml", "--input", str(sample_dir), "--set", "synthetic.profile=bicubic"]
    p = subprocess.Popen(cmd + ["--output", str(tmp_path / "a")], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(Path(ray_tmp, "ray").glob("session_2*/datakit-driver.json")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)                                   # workers at work
    p.kill()
    p.wait()
    dead = [str(s.parent) for s in Path(ray_tmp, "ray").glob("session_2*/datakit-driver.json")]
    assert len(dead) == 1
    out = tmp_path / "b"
    run = run_at_terminal(cmd + ["--output", str(out), "--limit", "1"], cwd=REPO, timeout=300,
                          env={"RAY_TMPDIR": ray_tmp,
                               "PATH": f"{ffmpeg_dir(tmp_path)}:{Path(sys.executable).parent}:/usr/bin:/bin"})
    assert run.status is not None, f"hung at the terminal; stopped processes: {run.stopped}\n{run.screen[-2000:]}"
    assert run.status == 0, run.screen[-3000:]
    assert f"cleaned up after an earlier datakit run that was killed (pid {p.pid})" in run.screen, run.screen[-3000:]
    assert not Path(dead[0]).exists()
    assert not [x for x in _leftovers(ray_tmp) if dead[0] in str(x)]
    report = verify(str(out))
    assert report.ok and report.samples > 0
