"""The degradations against the reference implementations' own outputs.

The values in ``tests/data/degradation_reference.*`` were recorded from the official code
(BasicSR / Real-ESRGAN and mmagic, commits in the json) by
``tests/data/record_degradation_reference.py``, on fixed inputs with fixed parameters, or with
the reference's own random draws logged so that the same draws can be fed to datakit.
Known, deliberate differences are named where a test allows for them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from datakit import degrade
from datakit.degrade import kernels as K
from datakit.degrade import ops, plan, sampling
from datakit.degrade.config import BlurConfig
from datakit.degrade.params import (VERSION, BlurParams, ChainParams, FinalParams, JpegParams, NoiseParams,
                                    OrderParams, ResizeParams, UsmParams, VideoParams)
from datakit.degrade.profiles import REALBASICVSR

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def ref():
    with np.load(DATA / "degradation_reference.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((DATA / "degradation_reference.json").read_text())


def psnr(a, b) -> float:
    m = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if m == 0 else 10 * math.log10(255 ** 2 / m)


def our_kernel(family, size, sx, sy, th, beta, omega):
    return K.make(family, size, sx, sy, th, beta, omega)


# ---- BasicSR / Real-ESRGAN ------------------------------------------------------------------------

def test_kernels_equal_basicsr_and_mmagic(ref):
    a, meta = ref
    for i, case in enumerate(meta["kernels"]):
        ours = our_kernel(*case)
        np.testing.assert_allclose(ours, a[f"kernel/basicsr/{i}"], atol=1e-12, err_msg=str(case))
        # mmagic builds the covariance in float32
        np.testing.assert_allclose(ours, a[f"kernel/mmagic/{i}"], rtol=2e-5, atol=1e-8, err_msg=str(case))


def test_blur_equals_basicsr_filter2d_on_every_path(ref):
    a, meta = ref
    img = a["img"].astype(np.float32)
    paths = set()
    for i, case in enumerate(meta["kernels"]):
        k = our_kernel(*case)
        paths.add(ops.blur_path(k))
        np.testing.assert_allclose(ops.blur(img, k), a[f"blur/basicsr/{i}"], atol=2e-3, err_msg=str(case))
    assert paths == {"separable", "direct", "fft"}


def test_unsharp_masking_equals_realesrgan_and_mmagic(ref):
    a, _ = ref
    ours = ops.usm(a["img"], ops.gaussian_taps(51, 0.0), 0.5, 10.0)
    for key in ("usm/basicsr_torch", "usm/basicsr_numpy", "usm/mmagic"):
        diff = np.abs(ours - a[key])
        # float rounding can flip the |residual| > 10 mask at a pixel; the soft mask moves < 0.2
        assert diff.mean() < 1e-3 and diff.max() < 0.2, (key, diff.mean(), diff.max())
    assert np.abs(ours - a["img"]).mean() > 1.0   # it does sharpen


def test_resize_equals_torch_interpolate_with_a_size(ref):
    a, meta = ref
    img = a["img"].astype(np.float32)
    for h, w in meta["resize_sizes"]:
        for mode, ours in (("area", "torch_area"), ("bilinear", "bilinear"), ("bicubic", "bicubic")):
            np.testing.assert_allclose(ops.resize(img, (w, h), ours), a[f"resize/{mode}/{h}x{w}"], atol=2e-3,
                                       err_msg=f"{mode} {h}x{w}")


def test_diffjpeg_equals_basicsr(ref):
    a, meta = ref
    for q in meta["diffjpeg_qualities"]:
        np.testing.assert_allclose(ops.diff_jpeg(a["jpeg_img"], q), a[f"diffjpeg/{q}"], atol=1e-3, err_msg=str(q))


def _blur_params(case) -> BlurParams:
    fam, size, sx, sy, th, beta, om = case
    if fam == "sinc":
        return BlurParams(True, "sinc", size, omega=(om,))
    iso = fam in ("iso", "generalized_iso", "plateau_iso")
    return BlurParams(True, fam, size, (sx,), () if iso else (sy,), () if iso else (th,),
                      (beta,) if fam.startswith(("generalized", "plateau")) else ())


def _esrgan_params(case: dict, lr: tuple[int, int]) -> ChainParams:
    mode = {"area": "torch_area"}.get
    silent = NoiseParams(True, "gaussian", False, sigma=(0.0,), seed=0)   # noise of sigma 0: the clamps stay
    (d1, s1, m1), (d2, s2, m2), (first, mf) = case["order1"], case["order2"], case["final"]
    o1 = OrderParams(True, _blur_params(case["kernel1"]), ResizeParams(True, d1, mode(m1, m1), (s1,)), silent,
                     JpegParams(True, (case["q1"],), "diffjpeg"))
    o2 = OrderParams(True, _blur_params(case["kernel2"]) if case["kernel2"] else BlurParams(),
                     ResizeParams(True, d2, mode(m2, m2), (s2,)), silent)
    sinc = BlurParams(True, "sinc", case["sinc"][0], omega=(case["sinc"][1],)) if case["sinc"] else BlurParams()
    final = FinalParams(mode(mf, mf), first, sinc, JpegParams(True, (case["q2"],), "diffjpeg"))
    return ChainParams("realesrgan", 4, 1, o1, o2, final, usm=UsmParams(True, 51, 0.0, 0.5, 10.0),
                       order2_scale_from="lr", lr=lr, version=VERSION)


def test_realesrgan_chain_equals_feed_data(ref):
    """Real-ESRGAN's whole second-order chain (RealESRNetModel.feed_data, its noise at sigma 0)."""
    a, meta = ref
    hr = a["realesrgan/hr"]
    for i, case in enumerate(meta["realesrgan_cases"]):
        lq = a[f"realesrgan/lq/{i}"]
        ours = degrade.chain.degrade(hr[None], _esrgan_params(case, (32, 24)))[0]
        assert ours.shape == lq.shape
        diff = np.abs(ours.astype(int) - lq.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (i, diff.max(), (diff > 0).mean())


def _noise_std(make, reps: int) -> np.ndarray:
    ramp = np.tile(np.arange(256, dtype=np.float32)[None, :, None], (128, 1, 3))
    noise = np.stack([make(ramp, ops.frame_rng(99, r)) - ramp for r in range(reps)])
    return noise.std(axis=(0, 1, 3)), noise.mean(axis=(0, 1, 3))


@pytest.mark.parametrize("sampler", ops.NOISE_SAMPLERS)
def test_poisson_noise_statistics_equal_the_references(ref, sampler):
    """Per-level noise std and mean on a ramp (vals = 256) against BasicSR (unit) and mmagic (byte)."""
    a, _ = ref
    for units, key in (("unit", "poisson_unit"), ("byte", "poisson_byte")):
        for gray in (0, 1):
            std, mean = _noise_std(lambda x, rng: ops.poisson_noise(x, 1.0, bool(gray), rng, sampler, units), 16)
            rstd = a[f"noise/{key}/std/gray{gray}"]
            # levels away from the clamp at 0 and 255 (our noise is clamped with the image, the recorded is not),
            # averaged over bands of 16 levels: >= 32k samples a band, the std of either estimate < 0.5 %
            lv = slice(16, 224)
            band = lambda v: v[lv].reshape(-1, 16).mean(axis=1)   # noqa: E731
            np.testing.assert_allclose(band(std), band(rstd), rtol=0.03, err_msg=f"{units} gray={gray}")
            ratio = std[lv].mean() / rstd[lv].mean()
            assert abs(ratio - 1) < 0.02, (units, gray, ratio)
            assert abs(mean[lv].mean()) < 0.02 * rstd[lv].mean()
    # few distinct values: vals = 32, stronger noise (Real-ESRGAN's rule)
    few = a["noise/few_values_img"]
    std = np.stack([ops.poisson_noise(few, 1.0, False, ops.frame_rng(5, r), sampler) - few
                    for r in range(16)]).std(axis=(0, 1, 3))
    np.testing.assert_allclose(std[2:18], a["noise/poisson_unit/few_values/std"][2:18], rtol=0.1)


@pytest.mark.parametrize("sampler", ops.NOISE_SAMPLERS)
def test_gaussian_noise_statistics_equal_the_references(ref, sampler):
    a, _ = ref
    flat = np.full((128, 256, 3), 128, np.float32)
    for gray in (0, 1):
        n = np.stack([ops.gaussian_noise(flat, 10.0, bool(gray), ops.frame_rng(7, r), sampler) - flat
                      for r in range(4)])
        for key in ("gaussian", "mmagic_gaussian"):
            assert n.std() == pytest.approx(float(a[f"noise/{key}/std/gray{gray}"]), rel=0.02)
            corr = np.corrcoef(n[..., 0].ravel(), n[..., 1].ravel())[0, 1]
            assert corr == pytest.approx(float(a[f"noise/{key}/chan_corr/gray{gray}"]), abs=0.02)


# ---- mmagic (RealBasicVSR) ------------------------------------------------------------------------

MM_BLUR = dict(sigma=(0.2, 3.0), rotation=(-3.1416, 3.1416), betag=(0.5, 4.0), betap=(1.0, 2.0))
MM_STEPS = (0.02, 0.02, 0.31416, 0.05, 0.1, 0.0628)


@pytest.mark.parametrize("family", ["generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"])
def test_kernel_walk_equals_mmagic(ref, family):
    """Fed mmagic's own starts and increments, our walk gives its per-frame sigma, rotation and shape."""
    a, _ = ref
    walked, draws = a[f"walk/{family}/walked"], a[f"walk/{family}/uniforms"]
    T = walked.shape[1]
    beta_bounds = MM_BLUR["betag"] if family.startswith("generalized") else MM_BLUR["betap"]
    bounds = (MM_BLUR["sigma"], MM_BLUR["sigma"], MM_BLUR["rotation"], beta_bounds)
    col = (0, 1, 2, 3 if family.startswith("generalized") else 4)   # order of mmagic's draws
    for n in range(len(walked)):
        starts, incs = draws[n][:6], draws[n][6:].reshape(-1, 6)
        for j in range(4):
            ours = sampling.walk_from(starts[col[j]], incs[:T - 1, col[j]], bounds[j])
            np.testing.assert_allclose(ours, walked[n, :, j], atol=1e-6)


@pytest.mark.parametrize("family", ["generalized_iso", "plateau_aniso"])
def test_kernel_shape_draws_match_mmagic(ref, family):
    """Start shape uniform over the range and each frame re-drawn towards 1: the distributions of
    our draws equal those of mmagic's (two-sample Kolmogorov-Smirnov tests)."""
    a, _ = ref
    rw, ra = a[f"walk/{family}/walked_beta"], a[f"walk/{family}/applied_beta"]
    N, T = rw.shape
    cfg = REALBASICVSR.order1.blur
    bounds, step = (cfg.betag, cfg.betag_step) if family.startswith("generalized") else (cfg.betap, cfg.betap_step)
    rng = np.random.default_rng(0)
    ours = [sampling.draw_beta(rng, cfg, bounds, step, T) for _ in range(2000)]
    ow, oa = np.array([w for w, _ in ours]), np.array([x for _, x in ours])
    assert stats.ks_2samp(ow[:, 0], rw[:, 0]).pvalue > 1e-3            # start: uniform over the range
    assert stats.ks_2samp(oa.ravel(), ra.ravel()).pvalue > 1e-3        # applied shapes, every frame
    # the rule itself: applied uniform between the walked value and 1
    ok = np.abs(1 - rw) > 1e-3
    u = (ra[ok] - rw[ok]) / (1 - rw[ok])
    assert ((u >= -1e-9) & (u <= 1 + 1e-9)).all()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    ok = np.abs(1 - ow) > 1e-3
    assert stats.kstest((oa[ok] - ow[ok]) / (1 - ow[ok]), "uniform").pvalue > 1e-3
    # Real-ESRGAN's profile keeps the split start and no re-draw
    es = BlurConfig()
    w, x = sampling.draw_beta(rng, es, es.betag, 0.0, 4)
    assert w == x and len(set(x)) == 1


@pytest.mark.parametrize("key, lo, hi", [("resize", 0.15, 1.5), ("resize2", 0.3, 1.2)])
def test_resize_walk_sizes_equal_mmagic(ref, key, lo, hi):
    """Per-frame sizes from mmagic's start and increments: walked scale, floored to even sizes."""
    a, meta = ref
    base = tuple(meta["resize_walk_frame"])
    sizes, draws = a[f"resize_walk/{key}/sizes"], a[f"resize_walk/{key}/draws"]
    T = sizes.shape[1]
    for n in range(len(sizes)):
        scales = sampling.walk_from(draws[n][0], draws[n][1:T], (lo, hi))
        ours = [ops.scaled_size(base, s, even=True) for s in scales]
        assert ours == [tuple(s) for s in sizes[n]], n


def test_jpeg_quality_walk_equals_mmagic(ref):
    a, _ = ref
    q, draws = a["jpeg_walk/qualities"], a["jpeg_walk/draws"]
    T = q.shape[1]
    for n in range(len(q)):
        assert sampling.quality_walk(draws[n][0], draws[n][1:T], (30, 95)) == tuple(float(v) for v in q[n])


def test_frame_sizes_through_the_chain_equal_mmagic(ref):
    """Frames keep their walked sizes through noise and JPEG, the video codec brings them to the
    first frame's size, order 2 scales that size, the final resize makes the LR size."""
    a, meta = ref
    w0, h0 = meta["mmagic_chain_input"]
    target = (32, 24)
    for chain in meta["mmagic_chains"]:
        sh, walks = chain["shapes"], chain["walks"]
        T = len(sh["order1.resize"])
        assert sh["order1.noise"] == sh["order1.resize"] == sh["order1.jpeg"]          # the reference's rule
        assert all(s == sh["order1.resize"][0] for s in sh["order1.video"])
        s1 = sampling.walk_from(walks["order1.resize"][0], walks["order1.resize"][1:T], (0.15, 1.5))
        s2 = sampling.walk_from(walks["order2.resize"][0], walks["order2.resize"][1:T], (0.3, 1.2))
        r1 = ResizeParams(True, "down", "bilinear", s1, True)
        r2 = ResizeParams(True, "down", "bilinear", s2, True)
        silent = NoiseParams(True, "gaussian", False, sigma=(0.0,) * T)
        video = VideoParams(True, "libx264", 10.0, 0, "ultrafast")
        p = ChainParams("realbasicvsr", 4, T, OrderParams(True, resize=r1, noise=silent, video=video),
                        OrderParams(True, resize=r2, noise=silent),
                        FinalParams("area", not chain["final_video_first"], video=video),
                        order2_scale_from="current", version=VERSION)
        steps = {s.name: s for s in plan.build(p, (w0, h0), target)}
        assert [list(s) for s in steps["order1.resize"].sizes] == sh["order1.resize"]
        assert [list(s) for s in steps["order2.resize"].sizes] == sh["order2.resize"]
        assert [list(s) for s in steps["final.resize"].sizes] == sh["final"] == [list(target)] * T
    # and the chain runs through those sizes
    clip = np.stack([a["realesrgan/hr"]] * T)
    assert degrade.chain.degrade(clip, p).shape == (T, 24, 32, 3)


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_video_compression_at_the_reference_bits_per_pixel(ref, codec):
    """64x64 LR frames: bpp = rate / 4096 gives mmagic's absolute rate, and about its quality
    (x264 runs single-threaded and without mbtree here, for reproducible bytes)."""
    a, _ = ref
    clip = a["video/input"]
    for rate in (10000, 100000):
        bpp = rate / 4096
        bits = sampling.bits_per_frame(bpp, (64, 64))
        assert bits == rate
        ours = ops.video_compress(clip, codec, bits)
        theirs = a[f"video/{codec}/{rate}"]
        assert abs(psnr(ours, clip) - psnr(theirs, clip)) < 1.5, (rate, psnr(ours, clip), psnr(theirs, clip))


def test_libjpeg_differs_from_mmagic_only_by_its_channel_order(ref):
    """mmagic codes RGB frames as if they were BGR (bgr2rgb defaults to False); datakit codes them as RGB.
    Fed the channel-reversed frame, our JPEG gives mmagic's bytes exactly."""
    a, _ = ref
    img = a["img"]
    np.testing.assert_array_equal(ops.jpeg(img[..., ::-1], 40)[..., ::-1], a["jpeg/mmagic/40"])
    assert not np.array_equal(ops.jpeg(img, 40), a["jpeg/mmagic/40"])
