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
_RECORDED = {k: GOLDEN.get(k) for k in ("machine", "versions", "simd")}
_HERE = rec.environment()
# the fingerprints hold for the library builds and SIMD level they were recorded with; elsewhere
# re-record them (python tests/data/record_degradation_golden.py at the commit named in the json)
pytestmark = pytest.mark.skipif(
    _RECORDED != _HERE,
    reason=f"degradation fingerprints were recorded with {_RECORDED}, this machine has {_HERE}")


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


# ---- the building blocks of the levers, against the formulas they replace ----------------------

def test_quantize_equals_clip_rint_on_every_rounding_case():
    """OpenCV's saturating conversion rounds half to even and clamps as clip(rint(x)) does."""
    halves = np.arange(-8, 530, dtype=np.float32) / 2                     # every .5 from -4 to 264.5
    near = (halves.view(np.int32)[:, None] + np.arange(-3, 4, dtype=np.int32)).ravel().view(np.float32)
    rng = np.random.default_rng(0)
    values = np.concatenate([near, rng.uniform(-50, 300, 30_000).astype(np.float32),
                             np.float32([-0.0, 0.0, 1e12, -1e12, 3e9])])   # the last: NumPy's path
    for x in (values[:len(values) // 21 * 21].reshape(-1, 7, 3)[:, :5], values[:7 * 11].reshape(7, 11, 1),
              values[-3:].reshape(1, 1, 3)):
        expected = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        got = ops.quantize(x)
        assert got.shape == x.shape and got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 8, 1001, 1280 * 720 * 3])
def test_uniform16_are_the_generators_bytes_and_leave_its_state(n):
    a, b = ops.frame_rng(7, 3), ops.frame_rng(7, 3)
    np.testing.assert_array_equal(ops.uniform16(a, n), np.frombuffer(b.bytes(2 * n), dtype=np.uint16))
    sa, sb = a.bit_generator.state, b.bit_generator.state
    assert sa["state"] == sb["state"] and sa["has_uint32"] == sb["has_uint32"]   # "uinteger": a stale buffer
    # what follows (the exact Poisson draws of small means, the next frame's field) is the same
    np.testing.assert_array_equal(a.poisson(3.0, 50), b.poisson(3.0, 50))
    assert a.integers(0, 2 ** 32, 3, dtype=np.uint32).tolist() == b.integers(0, 2 ** 32, 3, dtype=np.uint32).tolist()


def test_byte_histogram_counts_distinct_values():
    img = np.zeros((5, 7, 3), np.uint8)
    img[0, 0] = (3, 200, 255)
    img[4, 6, 1] = 17
    assert ops.distinct_values(img) == 5 == np.count_nonzero(np.bincount(img.ravel(), minlength=256))
    assert ops.byte_histogram(img[..., :1]).sum() == 35
