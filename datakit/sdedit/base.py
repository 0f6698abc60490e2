"""What SDEdit needs from a text-to-video base model.

A backend implements :class:`VideoDiffusionModel` for one model family (Wan 2.1 in
:mod:`datakit.sdedit.wan`); the SDEdit maths in :mod:`datakit.sdedit.core` is written
against this interface only. To add a base model: implement the class, then add one line
to :data:`BACKENDS` (``name: "module:Class"``) and, if its directory can be recognised,
one rule to :func:`detect_backend`.

Conventions shared by every backend:

* videos are float tensors ``(B, 3, T, H, W)`` in ``[-1, 1]``;
* latents are the backend's *normalised* latents, the space the denoiser works in;
* schedulers follow diffusers' scheduler API (``set_timesteps``, ``timesteps``, ``sigmas``,
  ``set_begin_index``, ``step``), ``sigmas`` holding one more entry than ``timesteps``;
* :meth:`VideoDiffusionModel.add_noise` is the forward process at a schedule index; the
  default is flow matching, ``x_σ = (1 − σ)·x₀ + σ·ε`` (diffusers' flow schedulers, Wan).
"""
from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

#: backend name -> "module:Class"
BACKENDS: dict[str, str] = {
    "wan2.1": "datakit.sdedit.wan:WanT2V",
}


class ModelError(Exception):
    """A model directory is missing, incomplete or of an unknown kind."""


class VideoDiffusionModel(ABC):
    #: backend name, as in :data:`BACKENDS`
    backend: ClassVar[str]

    #: set by implementations in ``__init__``
    model_id: str             # recorded in every sample json
    path: str                 # the local directory the weights were read from
    synthetic: bool           # True for tiny random models (datakit.tiny)
    device: Any               # torch.device the model runs on
    dtype: Any                # compute dtype of the denoiser
    spatial_multiple: int     # H and W must be multiples of this
    temporal_stride: int      # the number of frames must be temporal_stride * k + 1
    max_side: int | None = None   # the largest H or W the denoiser can take (None: no limit)

    @abstractmethod
    def make_scheduler(self, steps: int, shift: float | None = None):
        """A fresh scheduler with ``set_timesteps(steps)`` done; ``shift`` overrides the model's default."""

    @abstractmethod
    def scheduler_info(self, scheduler) -> dict:
        """JSON-safe description of a scheduler (class, shift, ...) for the sample json."""

    @abstractmethod
    def encode_text(self, prompts: list[str]):
        """Text conditioning for ``prompts``, batched on dim 0 (a tensor of equal shapes per prompt)."""

    @abstractmethod
    def encode_video(self, video):
        """``(B, 3, T, H, W)`` in [-1, 1] -> normalised latents (deterministic: the posterior mode)."""

    @abstractmethod
    def decode_video(self, latents):
        """Normalised latents -> ``(B, 3, T, H, W)`` in [-1, 1]."""

    @abstractmethod
    def predict(self, latents, timesteps, text):
        """The denoiser's output for ``latents`` at ``timesteps`` (shape ``(B,)``) given ``text``;
        what the scheduler's ``step`` expects (for Wan: the flow velocity ε − x₀)."""

    def add_noise(self, latents, noise, scheduler, index: int):
        """The forward process: ``latents`` noised to the schedule's ``sigmas[index]``."""
        sigma = float(scheduler.sigmas[index])
        return (1.0 - sigma) * latents + sigma * noise

    def memory_need(self, size: tuple[int, int], frames: int, guidance: float):
        """Bytes an SDEdit call at base ``size`` (w, h) with ``frames`` frames needs beyond the loaded
        weights, as a :class:`~datakit.sdedit.memory.MemoryNeed`; None when the backend cannot say
        (then batches are not planned, only out-of-memory errors handled)."""
        return None

    def set_vae_tiling(self, tiling) -> None:
        """Tile (and slice) VAE passes with a :class:`~datakit.sdedit.vae.VaeTiling`, or None for whole frames."""
        raise NotImplementedError(f"{type(self).__name__} has no tiled VAE")

    def describe(self) -> dict:
        return {"backend": self.backend, "model_id": self.model_id, "synthetic": self.synthetic,
                "device": str(self.device), "dtype": str(self.dtype).replace("torch.", "")}


def detect_backend(path: str | Path) -> str:
    """The backend name for a local model directory (from its ``model_index.json``)."""
    index = Path(path) / "model_index.json"
    if not index.is_file():
        raise ModelError(f"{path}: no model_index.json (expected a diffusers pipeline directory)")
    try:
        cls = json.loads(index.read_text()).get("_class_name", "")
    except ValueError as e:
        raise ModelError(f"{index}: not valid JSON: {e}") from None
    if cls.startswith("Wan") and cls in ("WanPipeline", "WanVideoToVideoPipeline"):
        return "wan2.1"
    raise ModelError(f"{path}: pipeline class {cls!r} has no SDEdit backend (known: {', '.join(BACKENDS)})")


def backend_class(name: str) -> type[VideoDiffusionModel]:
    if name not in BACKENDS:
        raise ModelError(f"unknown SDEdit backend {name!r}; known: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def load_model(path: str | Path, backend: str = "auto", **kwargs) -> VideoDiffusionModel:
    """Load a text-to-video base model from a local directory (never the network)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model directory {path} not found")
    name = detect_backend(path) if backend == "auto" else backend
    return backend_class(name)(path, **kwargs)
