"""The torch path of the degradations (run here on the CPU) against the NumPy/OpenCV path.

Stated tolerances (docs/FORMAT.md): every per-frame operation agrees within 1e-3 on the 8-bit
scale (float rounding), for every kernel family, resize mode and DiffJPEG quality; noise fields
come from torch's generator, so noise is compared by its statistics; whole chains without noise
agree byte for byte but for rare roundings, amplified only where a codec follows (PSNR > 35 dB).
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from datakit import degrade, media  # noqa: E402
from datakit.degrade import kernels as K  # noqa: E402
from datakit.degrade import ops  # noqa: E402
from datakit.degrade import torch_ops as T  # noqa: E402
from datakit.records import Record  # noqa: E402
from datakit.stages.synthetic import Synthetic, SyntheticConfig  # noqa: E402

from test_degrade import psnr, textured_clip  # noqa: E402

CPU = torch.device("cpu")
TOL = 1e-3


@pytest.fixture(scope="module")
def frames():
    torch.set_num_threads(1)
    c = textured_clip(t=4, h=56, w=72, seed=2)
    return c, c.astype(np.float32), torch.from_numpy(c.astype(np.float32)).permute(0, 3, 1, 2).contiguous()


def back(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("family", K.ALL_FAMILIES)
@pytest.mark.parametrize("size", [7, 13, 21])
def test_blur_agrees_for_every_kernel_family(frames, family, size):
    _, x, xt = frames
    ks = np.stack([K.make(family, size, 0.3 + 0.8 * i, 0.5 + 0.4 * i, 0.7 * i - 1, 0.6 + 0.9 * i, 0.8 + 0.6 * i)
                   for i in range(4)])
    ours = np.stack([ops.blur(x[i], ks[i]) for i in range(4)])
    np.testing.assert_allclose(back(T.blur(xt, ks)), ours, atol=TOL)


@pytest.mark.parametrize("mode", ops.RESIZE_MODES)
def test_resize_agrees_for_every_mode(frames, mode):
    _, x, xt = frames
    for size in ((50, 40), (33, 27), (120, 96), (100, 30), (36, 28), (72, 56)):
        ours = np.stack([ops.resize(x[i], size, mode) for i in range(4)])
        np.testing.assert_allclose(back(T.resize(xt, size, mode)), ours, atol=TOL, err_msg=str(size))


def test_opencv_area_weights_are_opencvs(frames):
    """The matrices that make OpenCV's INTER_AREA on the device equal cv2.resize (shrink, grow, mixed)."""
    _, x, _ = frames
    for w, h in ((31, 17), (24, 28), (150, 20), (144, 112)):
        shrink = x.shape[1] >= h and x.shape[2] >= w
        wy, wx = T.cv_area_weights(x.shape[1], h, shrink), T.cv_area_weights(x.shape[2], w, shrink)
        mat = (wy @ x.astype(np.float64).transpose(0, 3, 1, 2) @ wx.T).transpose(0, 2, 3, 1)
        ref = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in x])
        np.testing.assert_allclose(mat, ref, atol=TOL)


def test_usm_and_diffjpeg_agree(frames):
    _, x, xt = frames
    taps = ops.gaussian_taps(51, 0.0)
    ours = np.stack([ops.usm(f, taps, 0.5, 10.0) for f in x])
    d = np.abs(back(T.usm(xt, taps, 0.5, 10.0)) - ours)
    assert d.mean() < 1e-4 and d.max() < 0.2   # (a flipped |residual| > 10 mask moves the soft mask a little)
    q = np.array([30.0, 47.5, 75.0, 95.0])
    ours = np.stack([ops.diff_jpeg(f, qq) for f, qq in zip(x, q)])
    np.testing.assert_allclose(back(T.diff_jpeg(xt, q)), ours, atol=TOL)


@pytest.mark.parametrize("units", ops.POISSON_UNITS)
@pytest.mark.parametrize("sampler", ops.NOISE_SAMPLERS)
def test_noise_statistics_agree_for_every_kind(sampler, units):
    ramp = np.tile(np.arange(256, dtype=np.float32)[None, :, None], (64, 1, 3))
    rt = torch.from_numpy(ramp).permute(2, 0, 1)[None].repeat(4, 1, 1, 1)
    band = lambda v: v[16:224].reshape(-1, 16).mean(axis=1)   # noqa: E731
    for gray in (False, True):
        ours = np.stack([ops.poisson_noise(ramp, 1.5, gray, ops.frame_rng(3, t), sampler, units) - ramp
                         for t in range(4)])
        theirs = back(T.poisson_noise(rt, np.full(4, 1.5), gray, 3, range(4), sampler, units)) - ramp
        np.testing.assert_allclose(band(theirs.std(axis=(0, 1, 3))), band(ours.std(axis=(0, 1, 3))), rtol=0.05)
        assert abs(theirs[:, :, 16:224].mean()) < 0.05 * theirs[:, :, 16:224].std()
        corr = np.corrcoef(theirs[..., 100:, 0].ravel(), theirs[..., 100:, 2].ravel())[0, 1]
        assert (corr > 0.99) if gray else (abs(corr) < 0.05)
    flat = np.full((64, 256, 3), 128, np.float32)
    ft = torch.from_numpy(flat).permute(2, 0, 1)[None].repeat(4, 1, 1, 1)
    for gray in (False, True):
        n = back(T.gaussian_noise(ft, np.array([2.0, 5.0, 10.0, 20.0]), gray, 1, range(4))) - flat
        assert [round(float(v), 1) for v in n.std(axis=(1, 2, 3)) / [2, 5, 10, 20]] == [1.0] * 4
        assert np.array_equal(n[..., 0], n[..., 2]) == gray
    # a field per (seed, frame), reproducible
    a = T.gaussian_noise(ft[:2], np.array([5.0, 5.0]), False, 1, [0, 1])
    b = T.gaussian_noise(ft[:2], np.array([5.0, 5.0]), False, 1, [0, 1])
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])


NO_NOISE = {"order1": {"noise": {"prob": 0}}, "order2": {"noise": {"prob": 0}}}


@pytest.mark.parametrize("profile", ["realesrgan", "realbasicvsr", "light"])
def test_whole_chains_agree(profile):
    clip = textured_clip(t=5, h=64, w=80, seed=1)
    d = degrade.make(profile, 2, NO_NOISE)
    codecs = False
    for seed in range(4):
        p = d.sample(np.random.default_rng(seed), len(clip), (40, 32))
        a = d.apply(clip, p, (40, 32))
        b = d.apply(clip, p, (40, 32), device=CPU)
        assert b.shape == a.shape and b.dtype == np.uint8
        codecs |= p.order1.video.applied or p.final.video.applied or p.order1.jpeg.codec == "libjpeg"
        # byte-equal but for rare roundings; a codec after them spreads a flip over a block
        assert psnr(a, b) > 35, (seed, psnr(a, b))
        if profile == "realesrgan":
            assert (a != b).mean() < 1e-3
    # with noise: the same draws, other fields; the same amount of degradation
    d = degrade.make(profile, 2)
    for seed in range(2):
        p = d.sample(np.random.default_rng(seed), len(clip), (40, 32))
        a, b = d.apply(clip, p, (40, 32)), d.apply(clip, p, (40, 32), device=CPU)
        up = lambda lr: np.stack([cv2.resize(f, (80, 64), interpolation=cv2.INTER_CUBIC) for f in lr])  # noqa
        assert abs(psnr(up(a), clip) - psnr(up(b), clip)) < 1.5
        np.testing.assert_array_equal(b, d.apply(clip, p, (40, 32), device=CPU))   # reproducible


def test_synthetic_stage_on_a_device_records_it():
    clip = textured_clip(t=5, h=64, w=80)
    rec = Record(key="k1", meta={"fps": 25.0, "hr": {"width": 80, "height": 64}},
                 media={"hr.mp4": media.encode(clip, 25, lossless=True)})
    stage = Synthetic(SyntheticConfig(profile="realesrgan", scale=2, device="cpu"))
    stage.setup()
    assert stage.device is None   # "cpu": the NumPy path
    with pytest.raises(ValueError, match="not usable"):
        degrade.resolve_device("cuda:7" if not torch.cuda.is_available() else "nodevice")
    stage.device = "cpu:0"        # what a GPU worker gets ("cuda"), on the CPU torch backend here
    r, = stage.process_batch([rec])
    entry = json.loads(json.dumps(r.meta["degradations"][0]))
    assert entry["device"] == {"backend": "torch", "device": "cpu:0", "torch": torch.__version__}
    lr = media.decode(r.media["lr.mp4"])
    p = degrade.params_from_dict("realesrgan", entry["params"])
    np.testing.assert_array_equal(lr, stage.degradation.apply(clip, p, (40, 32), device="cpu:0"))
    # auto: the CPU path without GPUs
    assert degrade.resolve_device("auto", 0) is None and degrade.resolve_device("cpu", 1) is None
