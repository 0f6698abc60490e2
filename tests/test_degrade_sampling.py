"""Parameter draws of the degradation profiles: ranges, frequencies, random walk, overrides."""
from __future__ import annotations

import copy
import math
from collections import Counter

import numpy as np
import pytest
import yaml

from datakit import degrade
from datakit.degrade import chain, config
from datakit.degrade.profiles import REALBASICVSR, REALESRGAN

N = 4000  # draws for the frequency tests


def close(count: int, n: int, p: float, z: float = 4.5) -> bool:
    """Binomial count within z standard deviations of its expectation."""
    return abs(count / n - p) <= z * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.fixture(scope="module")
def esrgan_draws():
    d = degrade.make("realesrgan", 4)
    rng = np.random.default_rng(1234)
    return [d.sample(rng, 1) for _ in range(N)]


def test_blur_family_and_sinc_frequencies(esrgan_draws):
    fam = Counter(p.order1.blur.family for p in esrgan_draws)
    assert set(fam) <= set(degrade.kernels.ALL_FAMILIES)
    assert close(fam["sinc"], N, 0.1)
    for name, prob in zip(REALESRGAN.order1.blur.families, REALESRGAN.order1.blur.family_probs):
        assert close(fam[name], N, 0.9 * prob), (name, fam[name])
    sizes = Counter(p.order1.blur.size for p in esrgan_draws)
    assert set(sizes) == set(config.KERNEL_SIZES)
    for s in config.KERNEL_SIZES:
        assert close(sizes[s], N, 1 / 8)


def test_first_order_ranges(esrgan_draws):
    pi = math.pi
    for p in esrgan_draws:
        b = p.order1.blur
        assert b.applied and b.size in config.KERNEL_SIZES
        if b.family == "sinc":
            lo = pi / 3 if b.size < 13 else pi / 5
            assert lo <= b.omega[0] <= pi and not b.sigma_x
        else:
            assert 0.2 <= b.sigma_x[0] <= 3.0
            if b.family.endswith("_iso") or b.family == "iso":
                assert b.sigma_y == () and b.theta == ()
            else:
                assert 0.2 <= b.sigma_y[0] <= 3.0 and -pi <= b.theta[0] <= pi
            if b.family.startswith("generalized"):
                assert 0.5 <= b.beta[0] <= 4.0
            elif b.family.startswith("plateau"):
                assert 1.0 <= b.beta[0] <= 2.0
            else:
                assert b.beta == ()
        r = p.order1.resize
        s = r.scale[0]
        assert {"up": 1.0 <= s <= 1.5, "down": 0.15 <= s <= 1.0, "keep": s == 1.0}[r.direction]
        assert r.mode in ("torch_area", "bilinear", "bicubic")
        nz = p.order1.noise
        if nz.kind == "gaussian":
            assert 1.0 <= nz.sigma[0] <= 30.0 and nz.poisson_scale == ()
        else:
            assert 0.05 <= nz.poisson_scale[0] <= 3.0 and nz.sigma == ()
        assert 30 <= p.order1.jpeg.quality[0] <= 95
        assert not p.order1.video.applied
        # second order and the final group
        if p.order2.blur.applied and p.order2.blur.family != "sinc":
            assert 0.2 <= p.order2.blur.sigma_x[0] <= 1.5
        s2 = p.order2.resize.scale[0]
        assert 0.3 <= s2 <= 1.2
        if p.order2.noise.kind == "gaussian":
            assert 1.0 <= p.order2.noise.sigma[0] <= 25.0
        else:
            assert 0.05 <= p.order2.noise.poisson_scale[0] <= 2.5
        assert not p.order2.jpeg.applied and 30 <= p.final.jpeg.quality[0] <= 95
        if p.final.sinc.applied:
            assert p.final.sinc.family == "sinc" and pi / 3 <= p.final.sinc.omega[0] <= pi


def test_step_frequencies(esrgan_draws):
    def freq(pred):
        return sum(1 for p in esrgan_draws if pred(p))
    assert close(freq(lambda p: p.order1.resize.direction == "up"), N, 0.2)
    assert close(freq(lambda p: p.order1.resize.direction == "down"), N, 0.7)
    assert close(freq(lambda p: p.order2.resize.direction == "keep"), N, 0.3)
    assert close(freq(lambda p: p.order1.resize.mode == "torch_area"), N, 1 / 3)
    assert close(freq(lambda p: p.order1.noise.kind == "gaussian"), N, 0.5)
    assert close(freq(lambda p: p.order1.noise.gray), N, 0.4)
    assert close(freq(lambda p: p.order2.blur.applied), N, 0.8)
    assert close(freq(lambda p: p.final.sinc.applied), N, 0.8)
    assert close(freq(lambda p: p.final.resize_first), N, 0.5)
    assert freq(lambda p: p.order2.applied) == N
    # Real-ESRGAN's shape draw: half below 1, half above (plateau: [1, 1] gives exactly 1)
    gen = [p.order1.blur.beta[0] for p in esrgan_draws if p.order1.blur.family.startswith("generalized")]
    assert close(sum(b < 1 for b in gen), len(gen), 0.5)
    pla = [p.order1.blur.beta[0] for p in esrgan_draws if p.order1.blur.family.startswith("plateau")]
    assert close(sum(b == 1.0 for b in pla), len(pla), 0.5)
    # uniform draws: the mean of sigma over iso kernels is the middle of the range
    sig = [p.order1.blur.sigma_x[0] for p in esrgan_draws if p.order1.blur.family == "iso"]
    assert np.mean(sig) == pytest.approx(1.6, abs=4.5 * 2.8 / math.sqrt(12 * len(sig)))
    q = [p.order1.jpeg.quality[0] for p in esrgan_draws]
    assert np.mean(q) == pytest.approx(62.5, abs=1.5)


def test_realbasicvsr_codec_and_bitrate_draws():
    d = degrade.make("realbasicvsr", 4)
    rng = np.random.default_rng(7)
    draws = [d.sample(rng, 1, (64, 64)) for _ in range(1500)]
    for p in draws:
        for v in (p.order1.video, p.final.video):
            # the reference's absolute rates on its 64x64 LR crops, as bits per LR pixel
            assert v.applied and v.codec in ("libx264", "mpeg4") and 10_000 <= v.bitrate <= 100_000
            assert v.bitrate == round(v.bpp * 64 * 64) and 1e4 / 4096 <= v.bpp <= 1e5 / 4096
    # on a 320x180 LR the same bits per pixel: 14x more bits per frame
    p = d.sample(np.random.default_rng(7), 1, (320, 180))
    assert p.final.video.bitrate == round(p.final.video.bpp * 320 * 180) and p.lr == (320, 180)
    assert d.sample(np.random.default_rng(7), 1).final.video.bitrate == 0   # LR size unknown: set when applied
    assert close(sum(p.order1.video.codec == "mpeg4" for p in draws), 1500, 1 / 3)
    assert not any(p.final.jpeg.applied for p in draws)
    assert all(p.order2.jpeg.applied for p in draws)


def test_random_walk_moves_only_by_its_steps():
    d = degrade.make("realbasicvsr", 4)
    rng = np.random.default_rng(99)
    T = 40
    moved = Counter()
    for _ in range(150):
        p = d.sample(rng, T)
        for order, cfg in ((p.order1, REALBASICVSR.order1), (p.order2, REALBASICVSR.order2)):
            b, bc = order.blur, cfg.blur
            if b.applied:
                # (beta: each frame re-drawn towards 1 after the walk, see test_degrade_reference)
                checks = {"omega": (bc.omega_step, bc.omega_range(b.size))} if b.family == "sinc" else {
                    "sigma_x": (bc.sigma_step, bc.sigma), "sigma_y": (bc.sigma_step, bc.sigma),
                    "theta": (bc.rotation_step, bc.rotation)}
                for name, (step, (lo, hi)) in checks.items():
                    v = np.asarray(getattr(b, name))
                    if v.size == 0:
                        continue
                    assert len(v) == T
                    assert (v >= lo).all() and (v <= hi).all()
                    assert np.abs(np.diff(v)).max() <= step + 2e-6, name
                    moved[name] += bool(np.abs(np.diff(v)).max() > 0)
            r, rc = order.resize, cfg.resize
            v = np.asarray(r.scale)
            assert len(v) == T and (v >= rc.scale[0]).all() and (v <= rc.scale[1]).all()
            assert np.abs(np.diff(v)).max() <= rc.step + 2e-6
            nz, nc = order.noise, cfg.noise
            v, step = (np.asarray(nz.sigma), nc.sigma_step) if nz.kind == "gaussian" else \
                (np.asarray(nz.poisson_scale), nc.poisson_step)
            assert len(v) == T and np.abs(np.diff(v)).max() <= step + 2e-6
            q = np.asarray(order.jpeg.quality)
            assert len(q) == T and np.abs(np.diff(q)).max() <= 3 and (q >= 30).all() and (q <= 95).all()
            moved["quality"] += bool(np.abs(np.diff(q)).max() > 0)
        s = np.asarray(p.final.sinc.omega)
        if s.size:
            assert np.abs(np.diff(s)).max() <= 0.0628 + 2e-6 and (s >= math.pi / 3).all()
    assert moved["sigma_x"] > 50 and moved["theta"] > 20 and moved["quality"] > 100  # it does move


def test_realesrgan_draws_once_per_clip():
    p = degrade.make("realesrgan", 4).sample(np.random.default_rng(3), 25)
    for order in (p.order1, p.order2):
        for seq in (order.blur.sigma_x, order.blur.omega, order.resize.scale, order.noise.sigma,
                    order.noise.poisson_scale, order.jpeg.quality):
            assert len(set(seq)) <= 1
    assert len(p.order1.resize.scale) == 25


def test_walk_function():
    rng = np.random.default_rng(0)
    v = np.array(chain.walk(rng, 0.5, 0.1, (0.0, 1.0), 500))
    assert v[0] == 0.5 and np.abs(np.diff(v)).max() <= 0.1 + 1e-6
    assert v.min() >= 0 and v.max() <= 1 and v.std() > 0.05
    assert chain.walk(rng, 0.3, 0.0, (0.0, 1.0), 4) == (0.3, 0.3, 0.3, 0.3)
    # clipped at the bounds: a walk started at the top edge stays inside
    assert max(chain.walk(np.random.default_rng(1), 1.0, 0.5, (0.0, 1.0), 100)) <= 1.0


# ---- overrides ---------------------------------------------------------------------------------

def test_overrides_change_only_what_they_name():
    d = degrade.make("realbasicvsr", 4, {"order1": {"noise": {"sigma": [1, 5], "gray_prob": 0}},
                                         "final": {"video": {"bpp": ["2.5", 3]}}})
    c = d.config
    assert c.order1.noise.sigma == (1.0, 5.0) and c.order1.noise.gray_prob == 0.0
    assert c.final.video.bpp == (2.5, 3.0)
    assert c.order1.noise.poisson_scale == REALBASICVSR.order1.noise.poisson_scale
    assert c.order2 == REALBASICVSR.order2
    rng = np.random.default_rng(0)
    for _ in range(300):
        p = d.sample(rng, 2)
        if p.order1.noise.kind == "gaussian":
            assert 1 <= p.order1.noise.sigma[0] <= 5
        assert not p.order1.noise.gray and 2.5 <= p.final.video.bpp <= 3
    # the profile's own defaults are untouched
    assert degrade.make("realbasicvsr", 4).config == REALBASICVSR


@pytest.mark.parametrize("overrides, message", [
    ({"order3": {}}, "overrides.order3: unknown parameter; allowed here: usm, order1, order2, final"),
    ({"order1": {"noise": {"sigmaa": 1}}}, "overrides.order1.noise.sigmaa: unknown parameter"),
    ({"order1": {"noise": {"sigma": [30, 1]}}}, "overrides.order1.noise.sigma: expected [low, high] with low <= high"),
    ({"order1": {"noise": {"sigma": 3}}}, "overrides.order1.noise.sigma: expected a list"),
    ({"order1": {"noise": {"sigma": [1, 2, 3]}}}, "overrides.order1.noise.sigma: expected a list of 2 values"),
    ({"order1": {"noise": {"prob": 1.5}}}, "overrides.order1.noise.prob: must be a probability"),
    ({"order1": {"blur": {"sizes": [7, 8]}}}, "overrides.order1.blur.sizes: kernel sizes must be odd"),
    ({"order1": {"blur": {"family_probs": [0.5, 0.5]}}}, "overrides.order1.blur.family_probs: needs 6"),
    ({"order1": {"blur": {"families": ["iso", "box"], "family_probs": [0.5, 0.5]}}}, "unknown ['box']"),
    ({"order1": {"resize": {"direction_probs": [0.5, 0.2, 0.2]}}}, "must sum to 1"),
    ({"order1": {"resize": {"scale": [1.1, 2.0]}}}, "overrides.order1.resize.scale: must contain 1"),
    ({"final": {"video": {"codecs": ["h263"], "codec_probs": [1]}}}, "allowed: libx264, mpeg4"),
    ({"final": {"video": {"bpp": ["lots", 10]}}}, "overrides.final.video.bpp[0]: expected a number"),
    ({"final": {"video": {"bitrate": [1e4, 1e5]}}}, "overrides.final.video.bitrate: unknown parameter"),
    ({"order1": {"noise": {"sampler": "quick"}}}, "overrides.order1.noise.sampler: unknown 'quick'; allowed: exact, fast"),
    ({"order1": {"jpeg": {"codec": "webp"}}}, "overrides.order1.jpeg.codec: unknown 'webp'"),
    ({"usm": {"kernel": 50}}, "overrides.usm.kernel: must be an odd integer"),
    ({"order2_scale_from": "hr"}, "order2_scale_from: unknown 'hr'"),
    ({"order1": {"blur": {"beta_start": "gauss"}}}, "overrides.order1.blur.beta_start: unknown"),
    ({"final": {"jpeg": {"quality": [0, 50]}}}, "overrides.final.jpeg.quality: must lie within [1, 100]"),
    ({"order1": {"blur": {"sigma_step": -1}}}, "overrides.order1.blur.sigma_step: a walk step must be >= 0"),
    ({"order1": {"blur": 3}}, "overrides.order1.blur: expected a mapping"),
    ({"order1": {"jpeg": {"prob": True}}}, "expected a number"),
])
def test_bad_overrides_name_the_value(overrides, message):
    with pytest.raises(ValueError) as e:
        degrade.make("realbasicvsr", 4, overrides)
    assert message in str(e.value)


def test_unknown_profile_and_bicubic_overrides():
    with pytest.raises(ValueError, match="unknown degradation profile 'blurry'; allowed: bicubic, realesrgan"):
        degrade.make("blurry", 4)
    with pytest.raises(ValueError, match="no parameters to override"):
        degrade.make("bicubic", 4, {"order1": {}})
    assert set(degrade.PROFILES) == {"bicubic", "realesrgan", "realbasicvsr", "light", "heavy"}


SPEC = """
name: t
input: data/in
output: out/t
stages:
  - stage: probe
  - stage: split
  - stage: extract
  - stage: synthetic
    profile: realbasicvsr
    overrides:
      order1:
        noise: {sigma: [1, 15], gray_prob: 0.2}
      final:
        video: {bpp: [5, 24.4], codecs: [libx264], codec_probs: [1]}
"""


def test_pipeline_yaml_overrides_are_validated_at_load():
    from datakit import spec

    tree = yaml.safe_load(SPEC)
    s = spec.parse(copy.deepcopy(tree))
    syn = s.stages[-1]
    d = degrade.make(syn.profile, syn.scale, syn.overrides)
    assert d.config.order1.noise.sigma == (1.0, 15.0) and d.config.final.video.codecs == ("libx264",)
    assert d.config.final.video.bpp == (5.0, 24.4)
    s = spec.parse(copy.deepcopy(tree), ["synthetic.overrides.order2.blur.prob=0.5"])
    assert degrade.make("realbasicvsr", 4, s.stages[-1].overrides).config.order2.blur.prob == 0.5
    with pytest.raises(spec.SpecError, match=r"overrides\.order1\.noise\.sigma: expected \[low, high\]"):
        spec.parse(copy.deepcopy(tree), ["synthetic.overrides.order1.noise.sigma=[15,1]"])
    with pytest.raises(spec.SpecError, match=r"overrides\.order2\.blurr: unknown parameter"):
        spec.parse(copy.deepcopy(tree), ["synthetic.overrides.order2.blurr.prob=0.5"])
