"""Configuration of the synthetic degradation chains: ranges, probabilities, walk steps.

Each step of a chain has a frozen dataclass holding its ranges (``(low, high)``,
values drawn uniformly), probabilities and the per-frame random-walk step sizes
(0 = no walk: the value drawn for the clip holds on every frame). The defaults are
Real-ESRGAN's first-order settings; the named profiles (``profiles.py``) change them.

A pipeline overrides any of them with a nested mapping (``override``); unknown names,
wrong types and inconsistent values are rejected with the dotted path of the value.
"""
from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass, replace

from .kernels import ALL_FAMILIES, FAMILIES
from .ops import JPEG_CODECS, NOISE_SAMPLERS, POISSON_UNITS, RESIZE_MODES, VIDEO_CODECS, X264_PRESETS

PI = math.pi
KERNEL_SIZES = (7, 9, 11, 13, 15, 17, 19, 21)
#: The reference video-compression setting, in bits per pixel of the LR frame: mmagic's
#: RealBasicVSR encodes its 64x64 LR training crops at 1 frame per second with an
#: absolute bit rate in [1e4, 1e5] bit/s, i.e. 1e4 / 4096 to 1e5 / 4096 bits per LR pixel.
REFERENCE_BPP = (1e4 / 4096, 1e5 / 4096)


# ---- validation helpers (messages are "field: what is wrong") --------------------------------

def _check(ok: bool, name: str, msg: str) -> None:
    if not ok:
        raise ValueError(f"{name}: {msg}")


def _prob(name: str, p: float) -> None:
    _check(0.0 <= p <= 1.0, name, f"must be a probability in [0, 1], got {p}")


def _range(name: str, r, lo: float = -math.inf, hi: float = math.inf, positive: bool = False) -> None:
    _check(r[0] <= r[1], name, f"expected [low, high] with low <= high, got {list(r)}")
    _check(r[0] >= lo and r[1] <= hi, name, f"must lie within [{lo:g}, {hi:g}], got {list(r)}")
    if positive:
        _check(r[0] > 0, name, f"values must be > 0, got {list(r)}")


def _step(name: str, s: float) -> None:
    _check(s >= 0, name, f"a walk step must be >= 0, got {s}")


def _one_of(name: str, value: str, allowed) -> None:
    _check(value in allowed, name, f"unknown {value!r}; allowed: {', '.join(allowed)}")


def _choice(name: str, options, probs, allowed, probs_name: str) -> None:
    _check(len(options) > 0, name, "needs at least one entry")
    bad = [o for o in options if o not in allowed]
    _check(not bad, name, f"unknown {bad}; allowed: {', '.join(map(str, allowed))}")
    _check(len(set(options)) == len(options), name, f"has duplicates: {list(options)}")
    _check(len(probs) == len(options), probs_name, f"needs {len(options)} probabilities (one per entry of "
                                                   f"{name}), got {len(probs)}")
    _check(all(p >= 0 for p in probs), probs_name, f"probabilities must be >= 0, got {list(probs)}")
    _check(abs(sum(probs) - 1.0) < 1e-6, probs_name, f"must sum to 1, got {sum(probs):.6g}")


# ---- step configs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BlurConfig:
    """Blur with a random kernel (Real-ESRGAN: six Gaussian-like families, or sinc)."""
    prob: float = 1.0                      # probability that the step runs
    sizes: tuple[int, ...] = KERNEL_SIZES  # kernel size, uniform over these (odd)
    families: tuple[str, ...] = FAMILIES
    family_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1                 # a sinc kernel replaces the family draw with this probability
    sigma: tuple[float, float] = (0.2, 3.0)
    rotation: tuple[float, float] = (-PI, PI)
    betag: tuple[float, float] = (0.5, 4.0)   # generalized-Gaussian shape
    betap: tuple[float, float] = (1.0, 2.0)   # plateau shape
    omega: tuple[float, float] | None = None  # sinc cut-off; None: [pi/3, pi] below size 13, else [pi/5, pi]
    sigma_step: float = 0.0
    rotation_step: float = 0.0
    betag_step: float = 0.0
    betap_step: float = 0.0
    omega_step: float = 0.0
    # the shape's start value: "split" = below or above 1 with equal odds (Real-ESRGAN),
    # "uniform" = uniform over the whole range (mmagic's RealBasicVSR)
    beta_start: str = "split"
    # mmagic re-draws each frame's shape uniformly between the walked value and 1
    beta_redraw: bool = False

    def __post_init__(self):
        _one_of("beta_start", self.beta_start, ("split", "uniform"))
        _prob("prob", self.prob)
        _check(len(self.sizes) > 0 and all(isinstance(s, int) and s >= 3 and s % 2 == 1 for s in self.sizes),
               "sizes", f"kernel sizes must be odd integers >= 3, got {list(self.sizes)}")
        _choice("families", self.families, self.family_probs, FAMILIES, "family_probs")
        _prob("sinc_prob", self.sinc_prob)
        _range("sigma", self.sigma, positive=True)
        _range("rotation", self.rotation, -PI - 1e-9, PI + 1e-9)
        _range("betag", self.betag, positive=True)
        _range("betap", self.betap, positive=True)
        if self.omega is not None:
            _range("omega", self.omega, 0.0, PI + 1e-9, positive=True)
        for s in ("sigma_step", "rotation_step", "betag_step", "betap_step", "omega_step"):
            _step(s, getattr(self, s))

    def omega_range(self, size: int) -> tuple[float, float]:
        if self.omega is not None:
            return self.omega
        return (PI / 3, PI) if size < 13 else (PI / 5, PI)


@dataclass(frozen=True)
class ResizeConfig:
    """Resize up, down or keep, by a random scale, with a random interpolation."""
    prob: float = 1.0
    direction_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)   # up, down, keep
    scale: tuple[float, float] = (0.15, 1.5)   # up draws from [1, high], down from [low, 1]
    modes: tuple[str, ...] = ("area", "bilinear", "bicubic")
    mode_probs: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)
    step: float = 0.0
    even: bool = False   # floor sizes to even numbers (mmagic's is_size_even)

    def __post_init__(self):
        _prob("prob", self.prob)
        _choice("direction", ("up", "down", "keep"), self.direction_probs, ("up", "down", "keep"),
                "direction_probs")
        _range("scale", self.scale, positive=True)
        _check(self.scale[0] <= 1.0 <= self.scale[1], "scale", f"must contain 1, got {list(self.scale)}")
        _choice("modes", self.modes, self.mode_probs, tuple(RESIZE_MODES), "mode_probs")
        _step("step", self.step)


@dataclass(frozen=True)
class NoiseConfig:
    """Additive Gaussian noise (sigma in 8-bit units) or Poisson noise (times a scale)."""
    prob: float = 1.0
    gaussian_prob: float = 0.5
    sigma: tuple[float, float] = (1.0, 30.0)
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_prob: float = 0.4
    sigma_step: float = 0.0
    poisson_step: float = 0.0
    # Poisson counts drawn on the image scaled to [0, 1] ("unit", Real-ESRGAN) or to
    # [0, 255] ("byte", mmagic; the noise is 1/sqrt(255) as strong for the same scale)
    poisson_units: str = "unit"
    # "exact": NumPy's Gaussian and Poisson samplers; "fast": a table-driven Gaussian and
    # a normal approximation of the Poisson counts where they are large (ops.py): the same
    # distribution (tested against the references' samplers), 3-10x less time at HR size
    sampler: str = "fast"

    def __post_init__(self):
        _prob("prob", self.prob)
        _one_of("poisson_units", self.poisson_units, POISSON_UNITS)
        _one_of("sampler", self.sampler, NOISE_SAMPLERS)
        _prob("gaussian_prob", self.gaussian_prob)
        _prob("gray_prob", self.gray_prob)
        _range("sigma", self.sigma, 0.0, 255.0)
        _range("poisson_scale", self.poisson_scale, 0.0, 100.0)
        _step("sigma_step", self.sigma_step)
        _step("poisson_step", self.poisson_step)


@dataclass(frozen=True)
class JpegConfig:
    """JPEG per frame at a random quality.

    ``codec``: "libjpeg" (OpenCV's encoder and decoder, integer qualities, as mmagic) or
    "diffjpeg" (the JPEG model Real-ESRGAN trains with: BasicSR's DiffJPEG, continuous
    qualities, float output).
    """
    prob: float = 1.0
    quality: tuple[float, float] = (30.0, 95.0)
    step: float = 0.0
    codec: str = "libjpeg"

    def __post_init__(self):
        _prob("prob", self.prob)
        _one_of("codec", self.codec, JPEG_CODECS)
        _range("quality", self.quality, 1.0, 100.0)
        _step("step", self.step)


@dataclass(frozen=True)
class VideoConfig:
    """The whole clip through a video codec at a random bit budget.

    ``bpp`` is the budget in bits per pixel of the LR target frame: every compression
    step of the chain (also one before the final resize, on larger frames) gets
    ``bpp * LR width * LR height`` bits per frame, timed at 1 frame per second. That is
    the reference's setting at any resolution: mmagic gives every compression step of
    its 64x64-LR crops the same absolute bit rate in [1e4, 1e5] bit/s at 1 frame/s, i.e.
    ``REFERENCE_BPP`` = [2.44, 24.4] bits per LR pixel.
    """
    prob: float = 0.0
    codecs: tuple[str, ...] = ("libx264", "mpeg4")
    codec_probs: tuple[float, ...] = (2 / 3, 1 / 3)   # RealBasicVSR: libx264, h264 (= libx264), mpeg4
    bpp: tuple[float, float] = REFERENCE_BPP
    preset: str = "medium"   # libx264 speed preset (the encoder's default, as in the reference)

    def __post_init__(self):
        _prob("prob", self.prob)
        _choice("codecs", self.codecs, self.codec_probs, VIDEO_CODECS, "codec_probs")
        _range("bpp", self.bpp, 1e-3, 1e3)
        _check(self.preset in X264_PRESETS, "preset", f"unknown {self.preset!r}; allowed: {', '.join(X264_PRESETS)}")


@dataclass(frozen=True)
class OrderConfig:
    """One order of degradation: blur, resize, noise, JPEG, video compression, in that order."""
    prob: float = 1.0
    blur: BlurConfig = BlurConfig()
    resize: ResizeConfig = ResizeConfig()
    noise: NoiseConfig = NoiseConfig()
    jpeg: JpegConfig = JpegConfig()
    video: VideoConfig = VideoConfig()

    def __post_init__(self):
        _prob("prob", self.prob)


@dataclass(frozen=True)
class FinalConfig:
    """The last step: resize to the LR size + sinc filter, and compression, in random order."""
    modes: tuple[str, ...] = ("area", "bilinear", "bicubic")
    mode_probs: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)
    sinc: BlurConfig = BlurConfig(prob=0.8, sinc_prob=1.0, omega=(PI / 3, PI))
    jpeg: JpegConfig = JpegConfig()
    video: VideoConfig = VideoConfig()
    resize_first_prob: float = 0.5   # resize + sinc before the compression steps

    def __post_init__(self):
        _choice("modes", self.modes, self.mode_probs, tuple(RESIZE_MODES), "mode_probs")
        _prob("resize_first_prob", self.resize_first_prob)


@dataclass(frozen=True)
class UsmConfig:
    """Unsharp masking of the input before it is degraded (the HR target stays as it is).

    Real-ESRGAN (``gt_usm``) and mmagic's RealBasicVSR (``UnsharpMasking``) degrade a
    sharpened copy of the ground truth: residual = x - G*x with a Gaussian G of
    ``kernel`` taps (``sigma`` 0: OpenCV's rule, 8.0 at 51 taps); where |residual| >
    ``threshold`` (8-bit units) a mask is 1; the output blends x + ``weight`` * residual
    (clamped) and x by the mask blurred with G.
    """
    enabled: bool = False
    kernel: int = 51
    sigma: float = 0.0
    weight: float = 0.5
    threshold: float = 10.0

    def __post_init__(self):
        _check(isinstance(self.kernel, int) and self.kernel >= 3 and self.kernel % 2 == 1, "kernel",
               f"must be an odd integer >= 3, got {self.kernel}")
        _check(self.sigma >= 0, "sigma", f"must be >= 0 (0: from the kernel size), got {self.sigma}")
        _check(self.weight >= 0, "weight", f"must be >= 0, got {self.weight}")
        _check(self.threshold >= 0, "threshold", f"must be >= 0, got {self.threshold}")


@dataclass(frozen=True)
class ChainConfig:
    """Unsharp masking, first order, second order (run with ``order2.prob``), then the final group.

    ``order2_scale_from``: the size order 2's resize scale multiplies: "lr" = the LR
    target size (Real-ESRGAN) or "current" = the size of the clip's first frame after
    order 1 (mmagic).
    """
    usm: UsmConfig = UsmConfig()
    order1: OrderConfig = OrderConfig()
    order2: OrderConfig = OrderConfig()
    final: FinalConfig = FinalConfig()
    order2_scale_from: str = "lr"

    def __post_init__(self):
        _one_of("order2_scale_from", self.order2_scale_from, ("lr", "current"))


# ---- overrides ---------------------------------------------------------------------------------

def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _number(value, where: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):  # YAML reads 1e4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{where}: expected a number, got {value!r}")


def _coerce(value, tp, where: str):
    if _is_union(tp):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if tp is float:
        return _number(value, where)
    if tp is int:
        f = _number(value, where)
        if f != int(f):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(f)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{where}: expected a list of {len(args)} values, got {list(value)!r}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    raise TypeError(f"{where}: unsupported field type {tp}")


def override(cfg, changes: Mapping | None, path: str = ""):
    """A copy of the (nested) config ``cfg`` with ``changes`` applied and validated.

    ``changes`` mirrors the config's nesting, e.g. ``{"order1": {"noise": {"sigma": [1, 10]}}}``.
    Raises ``ValueError("order1.noise.sigma: ...")`` for unknown names or bad values.
    """
    if not changes:
        return cfg
    if not isinstance(changes, Mapping):
        raise ValueError(f"{path or 'overrides'}: expected a mapping of parameter names, got {changes!r}")
    hints = typing.get_type_hints(type(cfg))
    names = [f.name for f in fields(cfg)]
    updates = {}
    for key, value in changes.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            raise ValueError(f"{where}: unknown parameter; allowed here: {', '.join(names)}")
        current = getattr(cfg, key)
        if is_dataclass(current):
            updates[key] = override(current, value, where)
        else:
            updates[key] = _coerce(value, hints[key], where)
    try:
        return replace(cfg, **updates)
    except ValueError as e:
        raise ValueError(f"{path}.{e}" if path else str(e)) from None


def build(cls, data):
    """Rebuild a (nested) frozen dataclass from its ``asdict`` form (json lists become tuples)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        tp, v = hints[f.name], data[f.name]
        if _is_union(tp):
            inner = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = inner[0] if v is not None else type(None)
        if is_dataclass(tp) and isinstance(v, Mapping):
            v = build(tp, v)
        elif typing.get_origin(tp) is tuple and isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


__all__ = ["BlurConfig", "ResizeConfig", "NoiseConfig", "JpegConfig", "VideoConfig", "OrderConfig",
           "FinalConfig", "UsmConfig", "ChainConfig", "override", "build", "KERNEL_SIZES", "ALL_FAMILIES",
           "REFERENCE_BPP"]
