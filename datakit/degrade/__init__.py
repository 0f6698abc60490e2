"""Degradations: pure functions over ``(T, H, W, 3)`` uint8 frames.

A degradation draws its parameters for one clip as a small frozen dataclass
(``sample``), then applies them (``apply``). The parameters are recorded into the
sample's json, so every LR can be explained and reproduced. Stages that make LR
(``degrade`` now, ``sdedit`` and ``synthetic`` later) chain these and store the
result losslessly as ``lr.mp4``.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

import numpy as np

from .bicubic import Bicubic, BicubicParams


class Degradation(Protocol):
    name: str

    def sample(self, rng: np.random.Generator, num_frames: int) -> Any:
        """Draw this clip's parameters (a frozen dataclass)."""

    def apply(self, frames: np.ndarray, params: Any) -> np.ndarray:
        """Degrade ``(T, H, W, 3)`` uint8 frames; pure: same input and params, same output."""


#: Profiles selectable from a pipeline's ``degrade`` stage, by name.
PROFILES: dict[str, type] = {
    "bicubic": Bicubic,
}


def make(profile: str, scale: int) -> Degradation:
    try:
        cls = PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown degradation profile {profile!r}; allowed: {', '.join(PROFILES)}")
    return cls(scale=scale)


def params_dict(params: Any) -> dict:
    return asdict(params)


__all__ = ["Degradation", "PROFILES", "make", "params_dict", "Bicubic", "BicubicParams"]
