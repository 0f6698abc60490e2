"""Degradations: pure functions over ``(T, H, W, 3)`` uint8 frames.

A degradation draws its parameters for one clip as a small frozen dataclass
(``sample``), then applies them (``apply``). The parameters are recorded into the
sample's json, so every LR can be explained and reproduced (``params_from_dict``
rebuilds them). Stages that make LR (``synthetic``, after ``sdedit`` when a pipeline
has it) chain these and store the result losslessly as ``lr.mp4``.

Profiles: ``bicubic`` (the classic BI downscale) and the second-order chains
``realesrgan``, ``realbasicvsr``, ``light``, ``heavy`` (see ``profiles.py``), whose
ranges, probabilities and conventions a pipeline can override (``make(..., overrides=...)``).
The chains run on the CPU (NumPy/OpenCV) or, given a torch ``device``, with their
per-frame maths on that device (``gpu.py``).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

import numpy as np

from .bicubic import Bicubic, BicubicParams
from .chain import ChainParams, SecondOrder
from .profiles import Heavy, Light, RealBasicVSR, RealESRGAN


class Degradation(Protocol):
    name: str

    def sample(self, rng: np.random.Generator, num_frames: int, size: tuple[int, int] | None = None) -> Any:
        """Draw this clip's parameters (a frozen dataclass) for an LR of ``size`` = (width, height)."""

    def apply(self, frames: np.ndarray, params: Any, size: tuple[int, int] | None = None,
              timings: dict | None = None, device=None) -> np.ndarray:
        """Degrade ``(T, H, W, 3)`` uint8 frames to ``size`` = (width, height), default input / scale.

        Pure: same input and params, same output (on the CPU; a torch ``device`` runs the
        per-frame maths there, with its own noise generator).
        """


#: x264 preset of the lossless LR encode (lossless: the preset changes only speed and size;
#: veryfast is about 2x faster than medium for 1 % more bytes).
LOSSLESS_PRESET = "veryfast"

#: Profiles selectable from a pipeline's ``synthetic`` stage, by name.
PROFILES: dict[str, type] = {
    "bicubic": Bicubic,
    "realesrgan": RealESRGAN,
    "realbasicvsr": RealBasicVSR,
    "light": Light,
    "heavy": Heavy,
}


def make(profile: str, scale: int, overrides: dict | None = None) -> Degradation:
    """The named profile at ``scale``, with ``overrides`` (nested mapping) applied and validated."""
    try:
        cls = PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown degradation profile {profile!r}; allowed: {', '.join(PROFILES)}") from None
    return cls(scale=scale, overrides=overrides)


def params_dict(params: Any) -> dict:
    return asdict(params)


def resolve_device(device: str | None, num_gpus: float = 0.0) -> str | None:
    """The device the per-frame maths run on: None (the CPU path) or a torch device name.

    ``device`` "auto" (or None) picks "cuda" when ``num_gpus`` > 0 and a CUDA device is
    visible, else the CPU; "cpu" forces NumPy/OpenCV; anything else ("cuda", "cuda:1",
    "mps") is used as given (and must exist).
    """
    if device in (None, "auto"):
        if num_gpus <= 0:
            return None
        import torch

        return "cuda" if torch.cuda.is_available() else None
    if device == "cpu":
        return None
    import torch

    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as e:
        raise ValueError(f"device {device!r} is not usable here: {str(e).splitlines()[0]}") from None
    return str(device)


def device_record(device: str | None) -> dict:
    """What the sample json records about where the per-frame maths ran."""
    if device is None:
        return {"backend": "numpy"}
    import torch

    return {"backend": "torch", "device": str(device), "torch": torch.__version__}


def params_from_dict(profile: str, data: dict) -> Any:
    """Rebuild drawn parameters from their json form (``params_dict``)."""
    return PROFILES[profile].params_from_dict(data)


__all__ = ["Degradation", "PROFILES", "LOSSLESS_PRESET", "make", "params_dict", "params_from_dict", "Bicubic",
           "resolve_device", "device_record",
           "BicubicParams", "ChainParams", "SecondOrder", "RealESRGAN", "RealBasicVSR", "Light", "Heavy"]
