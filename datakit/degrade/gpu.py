"""Running a degradation plan with its per-frame maths on a torch device (a GPU).

The same plan (``plan.py``: the same drawn parameters, the same frame sizes) as the CPU path.
Frames go to the device a chunk at a time as uint8, and every per-frame step between two
clip steps runs there, batched over the frames of a chunk that share a size (a random walk
of the resize scale splits a batch by size). The results come back as uint8. On the CPU stay:
the video codec (a clip step), and libjpeg (``codec: libjpeg``; DiffJPEG runs on the device).

Noise fields are drawn by torch's generator, seeded per frame from the recorded seed: the LR
is reproducible on the same kind of device with the same torch, not byte-equal to the CPU
path (same distribution, other samples; the rest agrees to float rounding).
"""
from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import torch

from . import ops
from . import plan as P
from . import torch_ops as T

Batch = tuple[torch.Tensor, list[int]]   # (B, 3, H, W) float32 frames and their indices in the clip

#: Frames moved to the device at once (77 frames of 1080p are ~2 GB as float32).
CHUNK = 16


def _apply(step: P.FrameStep, batch: Batch) -> list[Batch]:
    x, idx = batch
    if isinstance(step, P.UsmStep):
        return [(T.usm(x, step.taps, step.weight, step.threshold), idx)]
    if isinstance(step, P.BlurStep):
        return [(T.blur(x, step.kernels[idx]), idx)]
    if isinstance(step, P.ResizeStep):
        groups: dict = defaultdict(list)
        for k, t in enumerate(idx):
            groups[step.sizes[t]].append(k)
        return [(T.resize(x[ks] if len(ks) < len(idx) else x, size, step.mode), [idx[k] for k in ks])
                for size, ks in groups.items()]
    if isinstance(step, P.NoiseStep):
        if step.kind == "gaussian":
            return [(T.gaussian_noise(x, step.levels[idx], step.gray, step.seed, idx), idx)]
        return [(T.poisson_noise(x, step.levels[idx], step.gray, step.seed, idx, step.sampler, step.units), idx)]
    if isinstance(step, P.JpegStep):
        if step.codec == "diffjpeg":
            return [(T.diff_jpeg(x, step.quality[idx]), idx)]
        host = T.quantize(x).permute(0, 2, 3, 1).cpu().numpy()
        coded = np.stack([ops.jpeg(f, step.quality[t]) for f, t in zip(host, idx)])
        return [(torch.from_numpy(coded).to(x.device).permute(0, 3, 1, 2).float(), idx)]
    raise TypeError(f"not a per-frame step: {step!r}")


def _upload(clip: list[np.ndarray], idx: list[int], device: torch.device) -> list[Batch]:
    groups: dict = defaultdict(list)
    for t in idx:
        groups[clip[t].shape].append(t)
    out = []
    for ts in groups.values():
        host = torch.from_numpy(np.stack([clip[t] for t in ts]))
        out.append((host.to(device, non_blocking=True).permute(0, 3, 1, 2).float(), ts))
    return out


def run_torch(frames: np.ndarray, steps: list[P.Step], device, timings: dict | None = None,
              chunk: int = CHUNK, clock=time.perf_counter) -> np.ndarray:
    """Run a plan over a ``uint8`` clip with the per-frame steps on ``device``."""
    dev = torch.device(device)

    def sync():
        if timings is not None and dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def add(name: str, t0: float) -> None:
        if timings is not None:
            sync()
            timings[name] = timings.get(name, 0.0) + clock() - t0

    clip = list(frames)
    i = 0
    with torch.inference_mode():
        while i < len(steps):
            if P.is_clip_step(steps[i]):
                st = steps[i]
                t0 = clock()
                clip = list(ops.video_compress(clip, st.codec, st.bitrate, st.preset))
                add(st.name, t0)
                i += 1
                continue
            j = i
            while j < len(steps) and not P.is_clip_step(steps[j]):
                j += 1
            out: list = [None] * len(clip)
            for s in range(0, len(clip), chunk):
                t0 = clock()
                batches = _upload(clip, list(range(s, min(len(clip), s + chunk))), dev)
                add("transfer", t0)
                for st in steps[i:j]:
                    t0 = clock()
                    batches = [b for batch in batches for b in _apply(st, batch)]
                    add(st.name, t0)
                t0 = clock()
                for x, idx in batches:
                    q = T.quantize(x).permute(0, 2, 3, 1).cpu().numpy()
                    for k, t in enumerate(idx):
                        out[t] = q[k]
                add("quantize", t0)
            clip = out
            i = j
    if len({f.shape for f in clip}) != 1:
        raise RuntimeError("the chain ended with frames of different sizes")
    return np.stack(clip)
