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
    x = clip[:3].astype(np.float32)
    sx, sy, th = np.array([1.0, 2.0, 2.5]), np.array([0.5, 1.5, 0.7]), np.array([0.3, -1.0, 2.0])
    for family, size in (("aniso", 7), ("aniso", 15), ("plateau_aniso", 21), ("iso", 21), ("sinc", 13)):
        ks = K.make(family, size, sx, sy, th, np.array([1.2, 1.5, 2.0]), omega=np.array([1.0, 2.0, 3.0]))
        y = ops.blur(x, ks.astype(np.float32))  # separable (iso), direct (7) or FFT paths
        for i in range(3):
            ref = cv2.filter2D(x[i], -1, ks[i].astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
            np.testing.assert_allclose(y[i], ref, atol=2e-3)
    assert ops._separable(K.gaussian(21, 2.0)) is not None and ops._separable(K.gaussian(21, 2.0, 1.0, 0.5)) is None
    # a blur lowers high frequencies: neighbouring pixels get closer
    y = ops.blur(x, K.gaussian(13, 2.0).astype(np.float32))
    assert np.abs(np.diff(y, axis=2)).mean() < 0.5 * np.abs(np.diff(x, axis=2)).mean()


def test_resize_walk_keeps_one_clip_size(clip):
    sizes = [(64, 48), (62, 46), (66, 50)]
    y = ops.resize_walk(clip[:3], sizes, (64, 48), "bicubic")
    assert y.shape == (3, 48, 64, 3)
    np.testing.assert_array_equal(y[0], cv2.resize(clip[0], (64, 48), interpolation=cv2.INTER_CUBIC))
    assert not np.array_equal(y[1], cv2.resize(clip[1], (64, 48), interpolation=cv2.INTER_CUBIC))
    assert ops.resize(clip, (32, 24), "area").shape == (len(clip), 24, 32, 3)


def test_gaussian_noise_level_colour_and_seeding():
    flat = np.full((4, 64, 64, 3), 128, np.uint8)
    sig = np.array([2.0, 5.0, 10.0, 20.0])
    y = ops.gaussian_noise(flat, sig, gray=False, seed=1, indices=np.arange(4))
    for i in range(4):
        assert (y[i] - 128).std() == pytest.approx(sig[i], rel=0.05)
    assert not np.allclose(y[0, ..., 0], y[0, ..., 1])            # colour noise
    g = ops.gaussian_noise(flat, sig, gray=True, seed=1, indices=np.arange(4))
    np.testing.assert_array_equal(g[..., 0], g[..., 2])           # gray noise
    # a new field per frame, fixed by (seed, frame index) whatever the chunking
    same = ops.gaussian_noise(flat[:1], np.array([5.0]), False, 1, indices=[1])
    np.testing.assert_array_equal(same[0], y[1])
    other = ops.gaussian_noise(flat[:2], np.array([5.0, 5.0]), False, 1, indices=[0, 1])
    assert not np.array_equal(other[0] - 128, other[1] - 128)
    # clamped to the 8-bit range
    assert ops.gaussian_noise(np.full((1, 8, 8, 3), 250, np.uint8), np.array([30.0]), False, 0, [0]).max() <= 255


def test_poisson_noise_grows_with_brightness():
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (256, 1, 3))[None]   # every value: vals = 256
    y = ops.poisson_noise(ramp, np.array([1.0]), gray=False, seed=3, indices=[0])
    noise = y[0] - ramp[0].astype(np.float32)
    for level in (40, 120, 200):
        band = noise[:, level - 8:level + 8]
        expected = 255 * np.sqrt(level / 255 / 256)  # Real-ESRGAN: var = img / vals on [0, 1]
        assert band.std() == pytest.approx(expected, rel=0.15)
    assert noise[:, 10:20].std() < noise[:, 200:210].std()
    half = ops.poisson_noise(ramp, np.array([0.5]), gray=False, seed=3, indices=[0])[0] - ramp[0]
    np.testing.assert_allclose(half[:, 100:200], 0.5 * noise[:, 100:200], atol=1e-3)   # scale multiplies
    g = ops.poisson_noise(ramp, np.array([1.0]), gray=True, seed=3, indices=[0])
    np.testing.assert_allclose(g[0, ..., 0] - ramp[0, ..., 0], g[0, ..., 1] - ramp[0, ..., 1], atol=1e-4)


def test_jpeg_quality_and_channel_order(clip):
    lo = ops.jpeg(clip[:2], [20, 20])
    hi = ops.jpeg(clip[:2], [95, 95])
    assert lo.dtype == np.uint8 and lo.shape == clip[:2].shape
    assert psnr(lo, clip[:2]) < psnr(hi, clip[:2]) - 5
    red = np.zeros((1, 16, 16, 3), np.uint8)
    red[..., 0] = 200
    out = ops.jpeg(red, [90])
    assert out[..., 0].mean() > 180 and out[..., 2].mean() < 20


@pytest.fixture(scope="module")
def real_clip():
    """17 frames of a real sample video (a face in a car, 176x144)."""
    from datakit.samples import sample_paths

    path = next(p for p in sample_paths() if p.name == "carphone_pristine.mp4")
    return media.read_span(str(path), 0.0, 17, 25.0)


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_low_bitrate_video_compression_lowers_psnr(codec, real_clip):
    lo = ops.video_compress(real_clip, codec, 3_000)
    mid = ops.video_compress(real_clip, codec, 10_000)
    hi = ops.video_compress(real_clip, codec, 100_000)
    assert lo.shape == real_clip.shape and lo.dtype == np.uint8
    assert psnr(lo, real_clip) + 2 < psnr(mid, real_clip) < psnr(hi, real_clip) - 2
    assert psnr(lo, real_clip) < 33


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_video_compression_is_reproducible(codec):
    # x264's macroblock tree made this input come out two ways from run to run
    clip = ops.jpeg(textured_clip(t=9, h=120, w=160, seed=3), np.full(9, 40))
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
    # chunking does not change anything (noise is seeded per frame)
    np.testing.assert_array_equal(a, d.apply(clip, p1, chunk=1))
    np.testing.assert_array_equal(a, d.apply(clip, p1, chunk=4))
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
    assert r.meta["lr"] == {"width": 32, "height": 24, "frames": len(clip), "codec": "libx264rgb", "lossless": True}
    entry, = r.meta["degradations"]
    assert entry["profile"] == "realbasicvsr" and entry["seed"] == clip_seed(7, "abc123")
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
    assert p == d.sample(np.random.default_rng(3), 9)
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
