"""The degradations' outputs, byte for byte, against the fingerprints recorded before the speed work.

``tests/data/degradation_golden.json`` holds the sha256 of every chain output (every profile,
seeds that take every branch of the draw) and of every operation's float32 output, recorded by
``tests/data/record_degradation_golden.py`` at the commit named in it. A speed lever that keeps
the output must keep these; samples recorded before it then still re-make from their json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from datakit import degrade
from datakit.degrade import ops

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
import record_degradation_golden as rec  # noqa: E402

GOLDEN = json.loads((DATA / "degradation_golden.json").read_text())


@pytest.fixture(scope="module")
def clip():
    i = GOLDEN["input"]
    return rec.clip(i["frames"], tuple(i["size"]))


def _mismatches(expected: dict, got: dict) -> list[str]:
    return [k for k in expected if got.get(k) != expected[k]]


@pytest.mark.parametrize("spec", list(GOLDEN["chains"]))
def test_chain_outputs_are_the_recorded_bytes(clip, spec):
    case = GOLDEN["chains"][spec]
    deg = degrade.make(spec.partition(":")[0], GOLDEN["scale"], case["overrides"])
    lr = (clip.shape[2] // GOLDEN["scale"], clip.shape[1] // GOLDEN["scale"])
    got = {}
    for seed in case["digests"]:
        p = deg.sample(np.random.default_rng(int(seed)), len(clip), lr)
        got[seed] = rec.digest(deg.apply(clip, p, lr))
    assert len(case["digests"]) >= 8
    assert not _mismatches(case["digests"], got), f"{spec}: seeds {_mismatches(case['digests'], got)} changed"


def test_operation_outputs_are_the_recorded_bits(clip):
    got = rec.op_cases(clip[2])
    assert set(got) == set(GOLDEN["ops"])
    # every blur path is among the cases
    assert {k.rsplit("/", 1)[1] for k in got if k.startswith("blur/")} == {"separable", "direct", "fft"}
    assert not _mismatches(GOLDEN["ops"], got), _mismatches(GOLDEN["ops"], got)
    large = rec.op_cases(rec.clip(3, rec.LARGE)[2])
    assert not _mismatches(GOLDEN["ops_large"], large), _mismatches(GOLDEN["ops_large"], large)


def test_video_codec_outputs_are_the_recorded_bytes(clip):
    got = rec.video_cases(clip)
    assert set(got) == {f"video/{c}" for c in ops.VIDEO_CODECS}
    assert not _mismatches(GOLDEN["video"], got), _mismatches(GOLDEN["video"], got)
