"""Memory stays bounded however many inputs: a job over 8 inputs peaks near one over 2."""
import sys
from pathlib import Path

import pytest

from conftest import FAST, REPO

sys.path.insert(0, str(REPO / "bench"))
from common import ray_free_env, replicate_samples, run_measured  # noqa: E402

pytestmark = pytest.mark.slow


def _job(inp: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "datakit.cli", "run", "pipelines/demo.yaml", "--input", str(inp), "--output",
           str(out), "-q", "--set", "split.max_clips_per_source=1", "--set", "ray.num_cpus=2",
           *[a for o in FAST for a in ("--set", o)]]
    res = run_measured(cmd, cwd=REPO, env=ray_free_env())
    assert res["returncode"] == 0, res["stderr"][-2000:]
    return res


def test_peak_memory_does_not_grow_with_input_count(tmp_path):
    small = _job(Path(replicate_samples(tmp_path / "in2", 2)[0]).parent, tmp_path / "out2")
    large = _job(Path(replicate_samples(tmp_path / "in8", 8)[0]).parent, tmp_path / "out8")
    assert "(0 of 2 sources already complete)" in small["stdout"]
    assert "(0 of 8 sources already complete)" in large["stdout"]
    # four times the inputs: the peak may move by noise (Ray's own processes dominate), not by 4x
    assert large["peak_rss"] < small["peak_rss"] * 1.35, (small["peak_rss"], large["peak_rss"])
