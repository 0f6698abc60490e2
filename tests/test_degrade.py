"""Degradation operations, the clip-consistent chain, determinism and the synthetic stage."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from datakit import degrade, media
from datakit.degrade import kernels as K
from datakit.degrade import ops
from datakit.records import Record
from datakit.stages.synthetic import Synthetic, SyntheticConfig, clip_seed


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    m = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if m == 0 else 10 * np.log10(255.0 ** 2 / m)


def textured_clip(t: int = 9, h: int = 96, w: int = 128, seed: int = 0, static: bool = False) -> np.ndarray:
    """Band-limited luminance texture on a colour gradient with an edge, panning one pixel per frame."""
    rng = np.random.default_rng(seed)
    H, W = h + 2 * t, w + 2 * t
    lum = cv2.GaussianBlur(rng.uniform(0, 255, (H, W)).astype(np.float32), (0, 0), 1.2)
    lum = (lum - lum.mean()) * 2.5
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack([60 + 120 * xx / W, 80 + 100 * yy / H, np.full_like(xx, 120)], -1)
    base[:, W // 2:] += 40
    big = np.clip(base + lum[..., None], 0, 255).astype(np.uint8)
    return np.stack([big[t:t + h, (0 if static else i) + t:(0 if static else i) + t + w] for i in range(t)])


@pytest.fixture(scope="module")
def clip():
    return textured_clip()


# ---- operations --------------------------------------------------------------------------------

def test_every_blur_path_matches_direct_correlation(clip):
    x = clip[0].astype(np.float32)
    cases = [("aniso", 7, 1.0, 0.5, 0.3), ("aniso", 15, 2.0, 1.5, -1.0), ("plateau_aniso", 21, 2.5, 0.7, 2.0),
             ("iso", 21, 2.0, 2.0, 0.0), ("sinc", 13, 0, 0, 0), ("aniso", 21, 0.4, 0.3, 1.0)]
    paths = set()
    for family, size, sx, sy, th in cases:
        k = K.make(family, size, sx, sy, th, 1.5, omega=2.0)
        paths.add(ops.blur_path(k))
        y = ops.blur(x, k)  # separable (iso), direct (small or trimmed) or FFT paths
        ref = cv2.filter2D(x.astype(np.float64), -1, k, borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_allclose(y, ref, atol=2e-3)
    assert paths == {"separable", "direct", "fft"}
    # a 21-tap kernel of small sigma is trimmed to its real support: the direct path
    assert ops.trim(K.make("aniso", 21, 0.4, 0.3, 1.0)).shape[0] <= 5
    assert ops.blur_path(K.make("aniso", 21, 0.4, 0.3, 1.0)) == "direct"
    assert ops.separable(K.gaussian(21, 2.0)) is not None and ops.separable(K.gaussian(21, 2.0, 1.0, 0.5)) is None
    # a blur lowers high frequencies: neighbouring pixels get closer
    y = ops.blur(x, K.gaussian(13, 2.0))
    assert np.abs(np.diff(y, axis=1)).mean() < 0.5 * np.abs(np.diff(x, axis=1)).mean()


def test_kernel_trimming_changes_only_float_rounding(real_clip):
    """Trimmed kernels drop rings of total weight < 1e-9; with the cheaper path that allows, the
    8-bit result equals an exact (float64) correlation as often as the full kernel's FFT path does."""
    x = np.ascontiguousarray(np.tile(real_clip[0], (2, 2, 1))[:256, :320]).astype(np.float32)
    q = lambda a: np.clip(np.rint(a), 0, 255)   # noqa: E731
    rng = np.random.default_rng(4)
    trimmed = wrong_lever = wrong_full = 0
    for _ in range(12):
        k = K.make(str(rng.choice(["aniso", "generalized_aniso"])), 21, rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8),
                   rng.uniform(-3, 3), rng.uniform(0.5, 4))
        t = ops.trim(k)
        assert np.abs(k).sum() - np.abs(t).sum() <= ops.TRIM_TOL and t.shape[0] % 2 == 1
        trimmed += t.shape[0] <= ops.DIRECT_MAX
        exact = cv2.filter2D(x.astype(np.float64), -1, k, borderType=cv2.BORDER_REFLECT_101)
        lever = ops.blur(x, k)
        full = ops.blur(x, k, tol=-1)      # the whole kernel: the FFT path
        assert np.abs(lever - exact).max() < 5e-4
        wrong_lever += int((q(lever) != q(exact)).sum())
        wrong_full += int((q(full) != q(exact)).sum())
    assert trimmed >= 6                              # order-2 sized kernels mostly shrink to <= 11 taps
    assert wrong_lever <= wrong_full + 2 and wrong_lever < 1e-5 * 12 * x.size


def test_resize_modes_and_sizes(clip):
    f = clip[0]
    for mode in ops.RESIZE_MODES:
        assert ops.resize(f, (50, 30), mode).shape == (30, 50, 3)
        assert ops.resize(f, (200, 150), mode).shape == (150, 200, 3)
    np.testing.assert_array_equal(ops.resize(f, (64, 48), "bicubic"),
                                  cv2.resize(f, (64, 48), interpolation=cv2.INTER_CUBIC))
    # torch's "area" = adaptive average pooling: an exact 2x reduction is the mean of 2x2 blocks
    half = ops.resize(f.astype(np.float32), (64, 48), "torch_area")
    np.testing.assert_allclose(half, f.astype(np.float32).reshape(48, 2, 64, 2, 3).mean(axis=(1, 3)), atol=1e-4)
    assert ops.scaled_size((101, 57), 0.5) == (50, 28) and ops.scaled_size((101, 57), 0.5, even=True) == (50, 28)
    assert ops.scaled_size((101, 57), 0.55, even=True) == (54, 30)


def test_gaussian_noise_level_colour_and_seeding():
    flat = np.full((64, 64, 3), 128, np.uint8)
    for sampler in ops.NOISE_SAMPLERS:
        for sig in (2.0, 5.0, 10.0, 20.0):
            y = ops.gaussian_noise(flat, sig, False, ops.frame_rng(1, 0), sampler)
            assert (y - 128).std() == pytest.approx(sig, rel=0.05)
        y = ops.gaussian_noise(flat, 5.0, False, ops.frame_rng(1, 0), sampler)
        assert not np.allclose(y[..., 0], y[..., 1])                                       # colour noise
        g = ops.gaussian_noise(flat, 5.0, True, ops.frame_rng(1, 0), sampler)
        np.testing.assert_array_equal(g[..., 0], g[..., 2])                                # gray noise
        # a field fixed by (seed, frame index); another frame, another field
        np.testing.assert_array_equal(y, ops.gaussian_noise(flat, 5.0, False, ops.frame_rng(1, 0), sampler))
        assert not np.array_equal(y, ops.gaussian_noise(flat, 5.0, False, ops.frame_rng(1, 1), sampler))
        # clamped to the 8-bit range
        hot = np.full((8, 8, 3), 250, np.uint8)
        assert ops.gaussian_noise(hot, 30.0, False, ops.frame_rng(0, 0), sampler).max() <= 255


def test_poisson_noise_grows_with_brightness():
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (256, 1, 3))   # every value: vals = 256
    y = ops.poisson_noise(ramp, 1.0, False, ops.frame_rng(3, 0))
    noise = y - ramp.astype(np.float32)
    for level in (40, 120, 200):
        band = noise[:, level - 8:level + 8]
        expected = 255 * np.sqrt(level / 255 / 256)  # Real-ESRGAN: var = img / vals on [0, 1]
        assert band.std() == pytest.approx(expected, rel=0.15)
    assert noise[:, 10:20].std() < noise[:, 200:210].std()
    half = ops.poisson_noise(ramp, 0.5, False, ops.frame_rng(3, 0)) - ramp
    np.testing.assert_allclose(half[:, 100:200], 0.5 * noise[:, 100:200], atol=1e-3)   # scale multiplies
    g = ops.poisson_noise(ramp, 1.0, True, ops.frame_rng(3, 0))
    np.testing.assert_allclose(g[..., 0] - ramp[..., 0], g[..., 1] - ramp[..., 1], atol=1e-4)
    # mmagic counts on the [0, 255] image: sqrt(255) times weaker
    b = ops.poisson_noise(ramp, 1.0, False, ops.frame_rng(3, 0), units="byte") - ramp
    assert b[:, 100:200].std() == pytest.approx(noise[:, 100:200].std() / np.sqrt(255), rel=0.15)


def test_fast_samplers_match_the_exact_samplers_statistics():
    """The "fast" samplers change the samples, not the distribution: moments per intensity against
    NumPy's exact samplers (the reference statistics are in test_degrade_reference)."""
    from scipy import stats

    z_exact = ops.standard_normal(ops.frame_rng(1, 0), (400_000,), "exact")
    z_fast = ops.standard_normal(ops.frame_rng(1, 0), (400_000,), "fast")
    for m in (np.mean, np.std, stats.skew, lambda v: stats.kurtosis(v, fisher=False)):
        assert float(m(z_fast)) == pytest.approx(float(m(z_exact)), abs=0.02)
    assert abs(np.mean(np.abs(z_fast) > 3) - 2 * stats.norm.sf(3)) < 3e-4   # the tails are there
    assert stats.ks_2samp(z_fast[:50_000], z_exact[:50_000]).pvalue > 1e-3
    for lam in (3.0, 25.0, 60.0, 200.0):
        lam_arr = np.full(200_000, lam)
        e = ops.poisson_counts(lam_arr, ops.frame_rng(2, 0), "exact")
        f = ops.poisson_counts(lam_arr, ops.frame_rng(2, 0), "fast")
        assert f.mean() == pytest.approx(lam, rel=0.01) and e.mean() == pytest.approx(lam, rel=0.01)
        assert f.var() == pytest.approx(e.var(), rel=0.03)
        assert stats.skew(f) == pytest.approx(stats.skew(e), abs=0.03)       # 1 / sqrt(lam)
        assert (f == np.rint(f)).all() and f.min() >= 0                      # counts
    # the choice is recorded, and a json that says "exact" re-makes the exact samples
    p = degrade.make("realesrgan", 4, {"order1": {"noise": {"sampler": "exact"}}}).sample(np.random.default_rng(0), 2)
    assert p.order1.noise.sampler == "exact" and degrade.make("realesrgan", 4).config.order1.noise.sampler == "fast"


def test_jpeg_quality_channel_order_and_contiguity(clip):
    lo, hi = ops.jpeg(clip[0], 20), ops.jpeg(clip[0], 95)
    assert lo.dtype == np.uint8 and lo.shape == clip[0].shape
    assert psnr(lo, clip[0]) < psnr(hi, clip[0]) - 5
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    out = ops.jpeg(red, 90)
    assert out[..., 0].mean() > 180 and out[..., 2].mean() < 20
    # the contiguous conversion codes the same bytes as OpenCV on the reversed view
    for q in (30, 77):
        _, ref = cv2.imencode(".jpg", clip[1][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        np.testing.assert_array_equal(ops.jpeg(clip[1], q), cv2.imdecode(ref, cv2.IMREAD_COLOR)[..., ::-1])
    # DiffJPEG: float in, float out, stronger loss at lower quality, fractional qualities work
    d30, d90 = ops.diff_jpeg(clip[0], 30.0), ops.diff_jpeg(clip[0], 90.5)
    assert d30.dtype == np.float32 and psnr(d30, clip[0]) < psnr(d90, clip[0]) - 5
    assert 0 <= d30.min() and d30.max() <= 255


@pytest.fixture(scope="module")
def real_clip():
    """17 frames of a real sample video (a face in a car, 176x144)."""
    from datakit.samples import sample_paths

    path = next(p for p in sample_paths() if p.name == "carphone_pristine.mp4")
    return media.read_span(str(path), 0.0, 17, 25.0)


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_low_bitrate_video_compression_lowers_psnr(codec, real_clip):
    # frames of other sizes are brought to the first frame's (as PyAV does for the reference)
    mixed = [real_clip[0], cv2.resize(real_clip[1], (180, 146)), real_clip[2]]
    assert ops.video_compress(mixed, codec, 100_000).shape == (3, 144, 176, 3)
    lo = ops.video_compress(real_clip, codec, 3_000)
    mid = ops.video_compress(real_clip, codec, 10_000)
    hi = ops.video_compress(real_clip, codec, 100_000)
    assert lo.shape == real_clip.shape and lo.dtype == np.uint8
    assert psnr(lo, real_clip) + 2 < psnr(mid, real_clip) < psnr(hi, real_clip) - 2
    assert psnr(lo, real_clip) < 33


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_video_compression_is_reproducible(codec):
    # x264's macroblock tree made this input come out two ways from run to run
    clip = [ops.jpeg(f, 40) for f in textured_clip(t=9, h=120, w=160, seed=3)]
    for bits in (300_000, 900_000):
        outs = [ops.video_compress(clip, codec, bits) for _ in range(6)]
        assert all(np.array_equal(outs[0], o) for o in outs[1:])


def test_video_compression_handles_odd_and_tiny_sizes(clip):
    odd = ops.video_compress(clip[:, :37, :21], "libx264", 10_000)
    assert odd.shape == (len(clip), 37, 21, 3)
    tiny = ops.video_compress(clip[:, :5, :3], "mpeg4", 10_000)
    assert tiny.shape == (len(clip), 5, 3, 3)


# ---- the chain ---------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", list(degrade.PROFILES))
def test_every_profile_degrades_to_the_lr_size(profile, clip):
    d = degrade.make(profile, 4)
    p = d.sample(np.random.default_rng(5), len(clip))
    lr = d.apply(clip, p)
    assert lr.shape == (len(clip), 24, 32, 3) and lr.dtype == np.uint8
    assert d.apply(clip, p, size=(30, 20)).shape == (len(clip), 20, 30, 3)
    json.dumps(degrade.params_dict(p))  # every parameter is json


def test_seeded_runs_are_byte_identical_and_json_reproduces_them(clip):
    d = degrade.make("realbasicvsr", 2)
    p1 = d.sample(np.random.default_rng(42), len(clip))
    p2 = d.sample(np.random.default_rng(42), len(clip))
    assert p1 == p2
    a = d.apply(clip, p1)
    np.testing.assert_array_equal(a, d.apply(clip, p2))
    # the json holds every drawn value: rebuilt parameters give the same LR
    back = degrade.params_from_dict("realbasicvsr", json.loads(json.dumps(degrade.params_dict(p1))))
    assert back == p1
    np.testing.assert_array_equal(a, d.apply(clip, back))
    # another seed, another LR
    p3 = d.sample(np.random.default_rng(43), len(clip))
    assert not np.array_equal(a, d.apply(clip, p3))
    assert media.encode(a, 25, lossless=True) == media.encode(d.apply(clip, p2), 25, lossless=True)


def test_parameters_must_match_the_clip(clip):
    d = degrade.make("realesrgan", 4)
    p = d.sample(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="drawn for 3 frames"):
        d.apply(clip, p)
    with pytest.raises(ValueError, match="uint8"):
        d.apply(clip[:3].astype(np.float32), p)
    # bit rates were fixed for one LR size
    p = degrade.make("realbasicvsr", 4).sample(np.random.default_rng(0), len(clip), (32, 24))
    with pytest.raises(ValueError, match="LR size of 32x24"):
        d.apply(clip, p, size=(30, 20))
    # parameters recorded before the reference semantics (no version) are refused, not re-made differently
    old = degrade.params_dict(p)
    del old["version"]
    with pytest.raises(ValueError, match="version 1"):
        d.apply(clip, degrade.params_from_dict("realbasicvsr", old))


NO_NOISE = {"order1": {"noise": {"prob": 0}}, "order2": {"noise": {"prob": 0}}}


def test_static_clip_degrades_alike_on_every_frame():
    static = textured_clip(t=10, static=True)
    # drawn once per clip, no walk: every frame exactly alike once the noise is off
    d = degrade.make("realesrgan", 2, NO_NOISE)
    for seed in range(4):
        lr = d.apply(static, d.sample(np.random.default_rng(seed), 10))
        assert all(np.array_equal(lr[0], lr[i]) for i in range(10))
    # with the noise on, frames differ only by their noise fields
    d = degrade.make("realesrgan", 2, {"order2": {"noise": {"prob": 0}}, "final": {"jpeg": {"prob": 0}},
                                       "order1": {"jpeg": {"prob": 0}, "noise": {"gaussian_prob": 1.0}}})
    p = d.sample(np.random.default_rng(1), 10)
    lr = d.apply(static, p).astype(np.float64)
    assert 0 < np.abs(lr[1] - lr[0]).mean() < p.order1.noise.sigma[0]
    # the RealBasicVSR walk: consecutive frames stay close, unlike independent draws per frame
    d = degrade.make("realbasicvsr", 2, NO_NOISE)
    walk, indep = [], []
    for seed in range(5):
        lr = d.apply(static, d.sample(np.random.default_rng(seed), 10))
        walk.append(np.mean([psnr(lr[i], lr[i + 1]) for i in range(9)]))
        a = d.apply(static[:1], d.sample(np.random.default_rng(100 + seed), 1))
        b = d.apply(static[:1], d.sample(np.random.default_rng(200 + seed), 1))
        indep.append(psnr(a[0], b[0]))
    assert np.mean(walk) > np.mean(indep) + 3
    # the walk alone (no codecs, no noise) changes a static clip very little from frame to frame
    d = degrade.make("realbasicvsr", 2, {**NO_NOISE, "order1": {"noise": {"prob": 0}, "video": {"prob": 0}},
                                         "final": {"video": {"prob": 0}}})
    for seed in range(3):
        lr = d.apply(static, d.sample(np.random.default_rng(seed), 10))
        assert min(psnr(lr[i], lr[i + 1]) for i in range(9)) > 30


def test_stronger_profiles_lose_more(clip):
    up = lambda lr: np.stack([cv2.resize(f, (clip.shape[2], clip.shape[1]), interpolation=cv2.INTER_CUBIC)
                              for f in lr])
    scores = {}
    for prof in ("bicubic", "light", "heavy"):
        d = degrade.make(prof, 2)
        scores[prof] = np.mean([psnr(up(d.apply(clip, d.sample(np.random.default_rng(s), len(clip)))), clip)
                                for s in range(4)])
    assert scores["bicubic"] > scores["light"] > scores["heavy"]


def test_bicubic_profile_still_works(clip):
    d = degrade.make("bicubic", 4)
    p = d.sample(np.random.default_rng(0), len(clip))
    assert degrade.params_dict(p) == {"scale": 4}
    lr = d.apply(clip, p)
    assert lr.shape == (len(clip), 24, 32, 3)
    assert degrade.params_from_dict("bicubic", {"scale": 4}) == p


# ---- the synthetic stage -----------------------------------------------------------------------

def _record(clip: np.ndarray, key: str = "abc123") -> Record:
    return Record(key=key, meta={"fps": 25.0, "hr": {"width": clip.shape[2], "height": clip.shape[1]}},
                  media={"hr.mp4": media.encode(clip, 25, lossless=True)})


def test_synthetic_stage_records_every_parameter(clip):
    cfg = SyntheticConfig(profile="realbasicvsr", scale=4, seed=7,
                          overrides={"order1": {"noise": {"sigma": [1, 5]}}})
    stage = Synthetic(cfg)
    stage.setup()
    r, = stage.process_batch([_record(clip)])
    lr = media.decode(r.media["lr.mp4"])
    assert lr.shape == (len(clip), 24, 32, 3)
    assert r.meta["lr"] == {"width": 32, "height": 24, "frames": len(clip), "codec": "libx264rgb", "lossless": True,
                       "threads": media.LOSSLESS_THREADS}
    entry, = r.meta["degradations"]
    assert entry["profile"] == "realbasicvsr" and entry["seed"] == clip_seed(7, "abc123")
    assert entry["device"] == {"backend": "numpy"} and entry["params"]["usm"]["applied"]
    assert list(entry["params"]["lr"]) == [32, 24] and entry["params"]["final"]["video"]["bitrate"] == \
        round(entry["params"]["final"]["video"]["bpp"] * 32 * 24)
    assert entry["overrides"] == {"order1": {"noise": {"sigma": [1, 5]}}}
    doc = json.loads(json.dumps(r.meta))
    params = degrade.params_from_dict("realbasicvsr", doc["degradations"][0]["params"])
    assert len(params.order1.resize.scale) == len(clip)
    # the json alone re-makes the stored LR (stored losslessly)
    frames = media.decode(_record(clip).media["hr.mp4"])
    np.testing.assert_array_equal(stage.degradation.apply(frames, params, size=(32, 24)), lr)
    # rerun: byte-identical; another clip id: another draw
    r2, = stage.process_batch([_record(clip)])
    assert r2.media["lr.mp4"] == r.media["lr.mp4"]
    r3, = stage.process_batch([_record(clip, key="def456")])
    assert r3.meta["degradations"][0]["params"] != entry["params"]


def test_synthetic_stage_uses_the_hr_size_when_reading_an_earlier_lr(clip):
    stage = Synthetic(SyntheticConfig(profile="light", scale=4))
    stage.setup()
    rec = _record(clip)
    rec.media["lr.mp4"] = media.encode(np.ascontiguousarray(clip[:, ::2, ::2]), 25, lossless=True)  # e.g. from sdedit
    r, = stage.process_batch([rec])
    assert media.decode(r.media["lr.mp4"]).shape == (len(clip), 24, 32, 3)


def test_synthetic_config_rejects_bad_overrides():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"overrides\.order1\.noise\.sigma"):
        SyntheticConfig(profile="heavy", overrides={"order1": {"noise": {"sigma": [5, 1]}}})
    with pytest.raises(ValidationError, match="no parameters to override"):
        SyntheticConfig(profile="bicubic", overrides={"order1": {}})


# ---- the degrade verb --------------------------------------------------------------------------

def test_degrade_verb_writes_lr_and_params(tmp_path, capsys):
    from datakit.cli import main
    from datakit.samples import sample_paths

    src = str(next(p for p in sample_paths() if p.name == "carphone_pristine.mp4"))
    out, params = tmp_path / "lr.mp4", tmp_path / "params.json"
    argv = ["degrade", src, "-o", str(out), "--profile", "light", "--seed", "3", "--frames", "9", "--json", str(params)]
    assert main(argv) == 0
    lr = media.decode(out.read_bytes())
    assert lr.shape == (9, 36, 44, 3)
    doc = json.loads(params.read_text())
    assert doc["profile"] == "light" and doc["seed"] == 3 and doc["lr"] == [44, 36] and doc["frames"] == 9
    p = degrade.params_from_dict("light", doc["params"])
    d = degrade.make("light", 4)
    assert p == d.sample(np.random.default_rng(3), 9, (44, 36)) and doc["device"] == {"backend": "numpy"}
    info = media.probe(src)
    hr = media.read_span(src, info.start_time, 9, info.fps)
    np.testing.assert_array_equal(lr, d.apply(hr, p))  # lossless, reproducible from the json
    assert "order 1:" in capsys.readouterr().out
    # same seed, same bytes
    out2 = tmp_path / "again.mp4"
    assert main(argv[:3] + [str(out2)] + argv[4:-2]) == 0
    assert out2.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("extra, message", [
    (["--profile", "blurry"], "--profile 'blurry': unknown"),
    (["--overrides", "{order1: {noise: {sigma: [9, 1]}}}"], "overrides.order1.noise.sigma"),
    (["--overrides", "[1, 2]"], "--overrides: expected a mapping"),
    (["--frames", "0"], "--frames must be at least 1"),
    (["--start", "60"], "past the end"),
])
def test_degrade_verb_bad_input(tmp_path, capsys, extra, message):
    from datakit.cli import main
    from datakit.samples import sample_paths

    src = str(next(p for p in sample_paths() if p.name == "carphone_pristine.mp4"))
    assert main(["degrade", src, "-o", str(tmp_path / "lr.mp4")] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("datakit: error:") and message in err
    assert main(["degrade", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "lr.mp4")]) == 2
    assert main(["degrade", src, "-o", str(tmp_path / "no" / "lr.mp4")]) == 2
