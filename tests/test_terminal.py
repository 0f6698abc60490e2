"""The README's run command at a real (pseudo-)terminal, as a person types it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import REPO
from datakit.verify import verify
from terminal import ffmpeg_dir, run_at_terminal

pytestmark = pytest.mark.slow

DATAKIT = str(Path(sys.executable).parent / "datakit")


def test_run_finishes_at_an_interactive_terminal_with_ffmpeg_on_path(sample_dir, tmp_path):
    """Job control on, an ``ffmpeg`` on PATH that touches the terminal: Ray's workers and
    their children must not inherit the terminal (they used to stop forever on SIGTTOU)."""
    out = tmp_path / "out"
    env = {"PATH": f"{ffmpeg_dir(tmp_path)}:{Path(sys.executable).parent}:/usr/bin:/bin"}
    run = run_at_terminal([DATAKIT, "run", "pipelines/demo.yaml", "--limit", "1", "--input", str(sample_dir),
                           "--output", str(out), "--set", "synthetic.profile=bicubic"],
                          cwd=REPO, env=env, timeout=240)
    assert run.status is not None, f"hung at the terminal; stopped processes: {run.stopped}\n{run.screen[-2000:]}"
    assert run.status == 0, run.screen[-3000:]
    report = verify(str(out))
    assert report.ok and report.samples > 0
