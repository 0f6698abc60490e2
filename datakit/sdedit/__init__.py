"""SDEdit degradation through a text-to-video base model (UniMMVSR §3.3, A.4; SPEC §3.7, §6).

* :mod:`.base` — the interface a base model implements, the backend table, :func:`load_model`;
* :mod:`.wan` — Wan 2.1 on diffusers (VAE, transformer, UMT5, tokenizer, flow scheduler);
* :mod:`.core` — the maths: base size, k ranges, noising to step N − k, k denoising steps;
* :mod:`.editor` — whole clips: seeding, batching equal shapes in batches that fit, the record for the sample json;
* :mod:`.memory` — batch sizes from free memory, refusing what cannot fit, out-of-memory errors;
* :mod:`.vae` — tiled / sliced VAE passes (diffusers' own) for frames too large for one pass;
* :mod:`.tiny` — a tiny random Wan pipeline for smoke runs and tests.

Heavy imports (torch, diffusers, transformers) happen only when a model is loaded.
"""
from .base import BACKENDS, ModelError, VideoDiffusionModel, detect_backend, load_model
from .core import PRESETS, base_size, draw_k, k_range, valid_frames
from .editor import Item, SDEditor, SDEditParams, clip_seed
from .memory import DoesNotFit, MemoryNeed
from .vae import VaeTiling

__all__ = ["BACKENDS", "ModelError", "VideoDiffusionModel", "detect_backend", "load_model", "PRESETS",
           "base_size", "draw_k", "k_range", "valid_frames", "Item", "SDEditor", "SDEditParams", "clip_seed",
           "DoesNotFit", "MemoryNeed", "VaeTiling"]
