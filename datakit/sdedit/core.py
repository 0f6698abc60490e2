"""SDEdit degradation (UniMMVSR §3.3, A.4), written against :class:`VideoDiffusionModel`.

For each clip: resize the HR frames to a base resolution the model generates directly,
encode with the VAE, noise the latent to the start of step ``N − k`` of an ``N``-step
schedule, denoise exactly ``k`` steps with the clip's caption, decode → x'.

Details:

* ``k`` is drawn uniformly from ``[K1, K2]`` per clip (:func:`draw_k`), seeded by the clip;
  ``k = 0`` returns the VAE round trip, ``k = N`` is a full generation from (almost) pure noise.
* The schedule index is set explicitly (``set_begin_index(N − k)``), never derived from a
  ``strength`` float (``int(N · strength)`` loses a step for e.g. N=50, k=29) nor looked up
  by timestep value (shifted integer timesteps can repeat). ``σ_start = sigmas[N − k]`` is the
  *shifted* σ.
* Clips of one shape run as one batch: they all end on the schedule's last step, so a clip
  with ``k`` steps joins the batch at iteration ``max(k) − k`` and every transformer call
  serves all clips active at that step (cond and uncond halves together when guidance > 1).
  One clip with ``k`` steps costs exactly ``k`` transformer calls.
* Each clip keeps its own scheduler state (multistep solvers remember earlier outputs).
* Noise comes from a CPU generator seeded per clip, so results do not depend on the device
  or the batch a clip lands in (up to floating-point differences of batched kernels).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from .base import VideoDiffusionModel

#: k ranges at N = 50 steps. The paper shows light SDEdit with 5 and heavy with 15 of 50 steps
#: (A.4, Table 4); the widths around them are datakit's choice. Other N scale proportionally.
PRESETS: dict[str, tuple[int, int]] = {"light": (3, 7), "heavy": (13, 17)}
PRESET_STEPS = 50


def k_range(preset: str | None, k_range: tuple[int, int] | None, steps: int) -> tuple[int, int]:
    """The ``[K1, K2]`` to draw from: explicit ``k_range`` wins, else the preset scaled to ``steps``."""
    if k_range is not None:
        k1, k2 = int(k_range[0]), int(k_range[1])
    else:
        if preset not in PRESETS:
            raise ValueError(f"unknown SDEdit preset {preset!r}; known: {', '.join(PRESETS)}")
        lo, hi = PRESETS[preset]
        k1, k2 = round(lo * steps / PRESET_STEPS), round(hi * steps / PRESET_STEPS)
    if not 0 <= k1 <= k2 <= steps:
        raise ValueError(f"k range [{k1}, {k2}] must satisfy 0 <= K1 <= K2 <= steps ({steps})")
    return k1, k2


def draw_k(k1: int, k2: int, seed: int) -> int:
    """k uniform on the integers of ``[k1, k2]``, from the clip's seed."""
    return int(np.random.default_rng([seed, 0x5DED17]).integers(k1, k2 + 1))


def base_size(width: int, height: int, multiple: int, base_width: int | None = None,
              base_height: int | None = None, base_area: int | None = None) -> tuple[int, int]:
    """(w, h) the model generates directly: multiples of ``multiple``, aspect kept where free.

    Both ``base_width`` and ``base_height`` given: those (rounded). One given: the other keeps
    the clip's aspect ratio. Neither: the size of about ``base_area`` pixels at the clip's aspect
    (orientation-agnostic: Wan 2.1's 832×480 area serves landscape and portrait clips).
    """
    def snap(x: float) -> int:
        return max(multiple, int(round(x / multiple)) * multiple)

    if base_width and base_height:
        return snap(base_width), snap(base_height)
    if base_height:
        return snap(width * base_height / height), snap(base_height)
    if base_width:
        return snap(base_width), snap(height * base_width / width)
    if not base_area:
        raise ValueError("give base_area, or base_width and/or base_height")
    s = math.sqrt(base_area / (width * height))
    return snap(width * s), snap(height * s)


def valid_frames(t: int, stride: int) -> int:
    """The smallest ``stride·k + 1 >= t``."""
    return t if (t - 1) % stride == 0 else ((t - 1) // stride + 1) * stride + 1


def to_model_video(frames: np.ndarray, size: tuple[int, int], frames_to: int, device,
                   chunk: int = 8) -> "torch.Tensor":  # noqa: F821
    """uint8 ``(T, H, W, 3)`` -> ``(1, 3, T', h, w)`` in [-1, 1]: resized (bicubic, antialiased)
    to ``size`` = (w, h), the last frame repeated up to ``frames_to`` frames.

    Frames are converted and resized ``chunk`` at a time (each frame is resized on its own, so
    the result does not depend on ``chunk``): a 77-frame 1080p clip as float32 would be 1.9 GB.
    """
    import torch
    import torch.nn.functional as F

    w, h = size
    parts = []
    for s in range(0, len(frames), chunk):
        x = torch.from_numpy(np.ascontiguousarray(frames[s:s + chunk])).to(device).permute(0, 3, 1, 2)
        x = x.float() / 127.5 - 1.0
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)
        parts.append(x)
    x = torch.cat(parts, 0) if len(parts) > 1 else parts[0]
    if frames_to > x.shape[0]:
        x = torch.cat([x, x[-1:].expand(frames_to - x.shape[0], -1, -1, -1)], 0)
    return x.permute(1, 0, 2, 3).unsqueeze(0).contiguous()


def to_uint8(video) -> np.ndarray:
    """``(3, T, H, W)`` in [-1, 1] -> uint8 ``(T, H, W, 3)``."""
    x = ((video.float().clamp(-1, 1) + 1.0) * 127.5).round().to("cpu").numpy().astype(np.uint8)
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0))


@dataclass
class Clip:
    """One SDEdit job: frames already at a valid base shape, ``(1, 3, T, h, w)`` in [-1, 1]."""
    video: "torch.Tensor"  # noqa: F821
    prompt: str
    k: int
    seed: int
    info: dict = field(default_factory=dict)   # filled by run(): sigma_start, timestep_start


def run(model: VideoDiffusionModel, clips: list[Clip], steps: int, guidance: float = 5.0,
        shift: float | None = None, negative_prompt: str = "", negative_cache: dict | None = None) -> list:
    """SDEdit a batch of equally shaped clips; returns one ``(1, 3, T, h, w)`` tensor per clip.

    ``negative_cache`` (any dict) keeps the encoded negative prompt between calls.

    Each clip's latent is its own tensor, rebound after every step and never written in place:
    a scheduler may keep the tensors it is given (UniPC keeps ``sample`` as ``last_sample`` for
    the corrector of the next step), so handing it a view of a batch that is then overwritten
    would corrupt the next step. The batch a transformer call sees is a fresh concatenation.
    """
    import torch

    if not clips:
        return []
    shapes = {tuple(c.video.shape) for c in clips}
    if len(shapes) != 1:
        raise ValueError(f"clips of one call must share a shape, got {sorted(shapes)}")
    for c in clips:
        if not 0 <= c.k <= steps:
            raise ValueError(f"k={c.k} outside [0, {steps}]")
    base = model.make_scheduler(steps, shift)
    if len(base.timesteps) != steps:
        raise ValueError(f"{type(base).__name__} made {len(base.timesteps)} timesteps for {steps} steps")

    latents = []
    for c in clips:
        z = model.encode_video(c.video)
        start = steps - c.k
        c.info = {"sigma_start": float(base.sigmas[start]),
                  "timestep_start": float(base.timesteps[start]) if c.k else None}
        if c.k:
            g = torch.Generator("cpu").manual_seed(int(c.seed))
            noise = torch.randn(z.shape, generator=g, dtype=torch.float32).to(z.device)
            z = model.add_noise(z, noise, base, start)
        latents.append(z)

    kmax = max(c.k for c in clips)
    if kmax:
        text = model.encode_text([c.prompt for c in clips])
        cfg = guidance > 1.0
        if cfg:
            if negative_cache is not None and negative_prompt in negative_cache:
                neg = negative_cache[negative_prompt]
            else:
                neg = model.encode_text([negative_prompt])
                if negative_cache is not None:
                    negative_cache[negative_prompt] = neg
        scheds = []
        for c in clips:
            s = copy.deepcopy(base)
            s.set_begin_index(steps - c.k)
            scheds.append(s)
        for it in range(kmax):
            idx = steps - kmax + it          # every active clip is at the same schedule index
            active = [i for i, c in enumerate(clips) if c.k >= kmax - it]
            x = torch.cat([latents[i] for i in active], 0)
            t = base.timesteps[idx]
            cond = text[active]
            if cfg:
                n = len(active)
                out = model.predict(torch.cat([x, x], 0), t.expand(2 * n),
                                    torch.cat([cond, neg.expand(n, *neg.shape[1:])], 0))
                v_cond, v_uncond = out[:n], out[n:]
                v = v_uncond + guidance * (v_cond - v_uncond)
            else:
                v = model.predict(x, t.expand(len(active)), cond)
            for j, i in enumerate(active):
                # rebind, never write in place; the scheduler gets tensors no one else writes
                latents[i] = scheds[i].step(v[j:j + 1].clone(), t, latents[i], return_dict=False)[0]
    return [model.decode_video(z) for z in latents]
