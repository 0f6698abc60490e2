"""Upscaling with a trained checkpoint: independent CFG and the reference guidance threshold (A.3).

Per denoising step ``n`` the velocity is

    v = v(c_txt, c_ref) + s_txt·(v(c_txt, c_ref) − v(∅_txt, c_ref)) + s_ref·(v(c_txt, c_ref) − v(c_txt, ∅_ref))

with ``s_ref`` set to 0 from step ``N_ref`` on (RGT). The paper writes it for ε; the
coefficients sum to one, so it holds unchanged for the flow velocity ``ε − x₀`` the model
predicts. ``∅_txt`` is the encoding of ``""``; ``∅_ref`` is the same sequence without
reference tokens. Without references (plain super-resolution) only the text term exists.
The conditional and null-text branches share one batched forward pass.

Defaults (§4.1.1, A.5.8): 50 steps, timestep shift 1.0 on the configured sampler (the base model's
flow scheduler unless ``inference.sampler`` says otherwise; :mod:`.sampler` says why not PNDM),
``s_txt`` 3.0, ``s_ref`` 1.0, ``N_ref`` 15; the LR latent is noise-augmented to t = 600
when references are given, 200 otherwise.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .. import fsio, media
from . import checkpoint as ckpt_mod
from .config import InferenceConfig, ModelConfig, SamplerConfig
from .data import SPATIAL_MULTIPLE, encode_references, pad_to, to_video, upscale_bilinear
from .sampler import describe as describe_scheduler, make_sampler
from .trainer import noise_augment

log = logging.getLogger("datakit.train")


@dataclass
class Guidance:
    s_txt: float = 3.0
    s_ref: float = 1.0
    n_ref: int = 15

    def ref_scale(self, step_index: int) -> float:
        """The reference guidance scale at step ``step_index`` (0-based): RGT cuts it after ``n_ref`` steps."""
        return self.s_ref if step_index < self.n_ref else 0.0


def combine(cond: torch.Tensor, null_txt: torch.Tensor | None, null_ref: torch.Tensor | None, s_txt: float,
            s_ref: float) -> torch.Tensor:
    """Independent CFG (A.3, eq. 2)."""
    out = cond
    if null_txt is not None and s_txt:
        out = out + s_txt * (cond - null_txt)
    if null_ref is not None and s_ref:
        out = out + s_ref * (cond - null_ref)
    return out


def _twice(v: torch.Tensor) -> torch.Tensor:
    return torch.cat([v, v], dim=0)


def guided_velocity(model, x, t, text, null_text, lr, aug_t, refs: Sequence, step_index: int, g: Guidance,
                    autocast: bool = False) -> tuple[torch.Tensor, list[str]]:
    """The guided velocity at one step, and which branches ran (``cond``, ``null_txt``, ``null_ref``)."""
    b = x.shape[0]
    dev = x.device
    tt = torch.full((b,), float(t), device=dev)
    aug = torch.full((b,), float(aug_t), device=dev)
    s_ref = g.ref_scale(step_index) if refs else 0.0
    branches = ["cond"]
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=autocast):
        if g.s_txt:
            out = model(_twice(x), _twice(tt), torch.cat([text, null_text], dim=0), lr=_twice(lr),
                        aug_t=_twice(aug), refs=[(k, _twice(lat)) for k, lat in refs]).float()
            cond, null_txt = out[:b], out[b:]
            branches.append("null_txt")
        else:
            cond = model(x, tt, text, lr=lr, aug_t=aug, refs=list(refs)).float()
            null_txt = None
        null_ref = None
        if s_ref:
            null_ref = model(x, tt, text, lr=lr, aug_t=aug, refs=()).float()
            branches.append("null_ref")
    return combine(cond, null_txt, null_ref, g.s_txt, s_ref), branches


def base_scheduler_config(wan) -> dict:
    """The base model's scheduler config with its class name (what ``sampler: base`` means)."""
    return dict(wan.scheduler_config) | {"_class_name": wan.scheduler_class.__name__}


def make_scheduler(wan, steps: int, shift: float, sampler: SamplerConfig | None = None):
    """The configured sampler (default: the base model's flow scheduler) with ``steps`` timesteps."""
    return make_sampler(sampler or SamplerConfig(), base_scheduler_config(wan), steps, shift, device=wan.device)


@torch.no_grad()
def denoise(model, wan, lr_latent, text, null_text, refs=(), steps: int = 50, shift: float = 1.0,
            guidance: Guidance | None = None, aug_t: int = 200, seed: int = 0, autocast: bool = False,
            callback: Callable[[int, float, list[str]], None] | None = None, scheduler=None) -> torch.Tensor:
    """Sample an HR latent for ``lr_latent``.

    ``scheduler``: a fresh scheduler with its timesteps set (:func:`make_scheduler`); default the
    base model's flow scheduler with ``steps`` and ``shift``.
    """
    guidance = guidance or Guidance()
    sched = scheduler if scheduler is not None else make_scheduler(wan, steps, shift)
    gen = torch.Generator().manual_seed(int(seed))
    dev = lr_latent.device
    x = torch.randn(lr_latent.shape, generator=gen).to(dev)
    lr = noise_augment(lr_latent, aug_t, torch.randn(lr_latent.shape, generator=gen))
    for n, t in enumerate(sched.timesteps):
        v, branches = guided_velocity(model, x, t, text, null_text, lr, aug_t, refs, n, guidance, autocast)
        if callback is not None:
            callback(n, float(t), branches)
        x = sched.step(v.to(x.dtype), t, x, return_dict=False)[0]
    return x


def _pad_frames(frames: np.ndarray, count: int) -> np.ndarray:
    if len(frames) >= count:
        return frames[:count]
    return np.concatenate([frames, np.repeat(frames[-1:], count - len(frames), axis=0)])


def _pad_edge(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    _, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, height - h), (0, width - w), (0, 0)), mode="edge")


def _device(device) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_checkpoint_model(checkpoint: str | None, device="auto", base_model: str | None = None):
    """(wan base model, UniMMVSR with the checkpoint's weights, checkpoint info).

    ``checkpoint`` None: the untrained baseline, UniMMVSR built from the T2V weights of
    ``base_model`` (LR channels and noise-augmentation embedding zero, so it ignores the LR
    latent's content): what a trained checkpoint is compared with. Its info holds the
    default inference settings and ``path`` ``base:DIR``.
    """
    from ..sdedit import load_model
    from .model import build

    dev = _device(device)
    if checkpoint is None:
        if not base_model or not Path(base_model).is_dir():
            raise ckpt_mod.CheckpointError(f"base model directory {base_model} not found (the untrained baseline "
                                           "is built from a Wan T2V folder)")
        wan = load_model(base_model, device=str(dev), dtype="auto" if dev.type == "cuda" else "float32")
        wan.set_vae_tiling(ModelConfig().tiling(dev.type))
        model = build(wan.transformer.float()).to(dev).eval().requires_grad_(False)
        info = {"step": 0, "model": model.describe(), "inference": InferenceConfig().model_dump(mode="json"),
                "base_model": str(base_model), "path": f"base:{base_model}"}
        return wan, model, info
    ck = ckpt_mod.resolve(checkpoint)
    info = ckpt_mod.read_info(ck)
    base = base_model or info["base_model"]
    if not Path(base).is_dir():
        raise ckpt_mod.CheckpointError(f"base model directory {base} (from {ck}/trainer.json) not found; "
                                       "pass the base model directory explicitly")
    wan = load_model(base, device=str(dev), dtype="auto" if dev.type == "cuda" else "float32")
    trained = (info.get("config") or {}).get("model") or {}
    wan.set_vae_tiling(ModelConfig.model_validate(trained).tiling(dev.type))   # as in training
    m = info["model"]
    model = build(wan.transformer.float(), m["rope_starts"], m.get("max_images")).to(dev)
    ckpt_mod.load_model_state(model, ck)
    model.eval().requires_grad_(False)
    return wan, model, info | {"path": ck}


def upscale(checkpoint: str | None, lr: str, prompt: str, output: str, ref_images: Sequence[str] = (),
            ref_video: str | None = None, steps: int | None = None, s_txt: float | None = None,
            s_ref: float | None = None, n_ref: int | None = None, shift: float | None = None,
            noise_aug: int | None = None, scale: int | None = None, seed: int = 0, device="auto",
            base_model: str | None = None, crf: int = 18, progress: Callable | None = None,
            sampler: str | None = None, start: float = 0.0, frames: int | None = None) -> dict:
    """Upscale the video at ``lr`` to ``scale`` times its size, guided by ``prompt`` and references.

    ``checkpoint`` None runs the untrained baseline built from ``base_model``. ``sampler``
    names a diffusers scheduler class (default: the checkpoint's ``inference.sampler``).
    ``start`` (seconds) and ``frames`` choose a part of the LR (default: all of it; the model
    takes at most ``4 * (rope images start - target start - 1) + 1`` frames at once: 77).
    Writes an H.264 MP4 of ``scale·h x scale·w`` pixels with the LR's frame count and rate.
    """
    t0 = time.time()
    wan, model, info = load_checkpoint_model(checkpoint, device, base_model)
    inf = info.get("inference", {})
    steps = steps or inf.get("steps", 50)
    shift = shift if shift is not None else inf.get("shift", 1.0)
    samp = SamplerConfig.model_validate(inf.get("sampler") or {})
    if sampler:
        samp = SamplerConfig(scheduler=sampler, settings=samp.settings if sampler == samp.scheduler else {})
    sched = make_scheduler(wan, steps, shift, samp)
    g = Guidance(s_txt if s_txt is not None else inf.get("s_txt", 3.0),
                 s_ref if s_ref is not None else inf.get("s_ref", 1.0),
                 n_ref if n_ref is not None else inf.get("n_ref", 15))
    scale = scale or inf.get("scale", 4)
    dev = wan.device

    if start < 0 or (frames is not None and frames < 1):
        raise ValueError("--start must not be negative and --frames must be at least 1")
    most = 4 * (model.max_target_frames - 1) + 1          # latent frames 1 + (T-1)//4 stay in the target range
    info_lr = media.probe(lr)
    fps = info_lr.fps or 24.0
    if start >= info_lr.duration_s:
        raise ValueError(f"--start {start:g}s is past the end of {lr} ({info_lr.duration_s:.3g}s)")
    avail = max(1, int(round((info_lr.duration_s - start) * fps)))
    n = min(frames or avail, avail)
    if n > most:
        raise ValueError(f"{lr}: {n} frames from {start:g}s, but this model upscales at most {most} at once (its "
                         f"target frames must end before the ID images' RoPE range): pass --frames {most} "
                         "(and --start SECONDS for a later part)")
    frames = media.read_span(lr, info_lr.start_time + start, n, fps)
    t, h, w, _ = frames.shape
    H, W = h * scale, w * scale
    Hp = math.ceil(H / SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE
    Wp = math.ceil(W / SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE
    tp = 1 + 4 * math.ceil((t - 1) / 4)          # Wan's VAE takes 4k+1 frames
    up = _pad_edge(upscale_bilinear(_pad_frames(frames, tp), H, W), Hp, Wp)
    lr_lat = wan.encode_video(to_video(up, dev)).clone()

    images = None
    if ref_images:
        from PIL import Image

        imgs = []
        for p in ref_images:
            with Image.open(p) as im:
                imgs.append(pad_to(np.asarray(im.convert("RGB")), Hp, Wp))
        images = np.stack(imgs)
    video = None
    if ref_video:
        rv = _pad_frames(media.decode(fsio.read_bytes(ref_video)), tp)
        if rv.shape[1:3] != (H, W):
            rv = upscale_bilinear(rv, H, W) if rv.shape[1] * W == rv.shape[2] * H else \
                np.stack([pad_to(f, H, W) for f in rv])
        video = np.stack([pad_to(f, Hp, Wp) for f in rv])
    refs = encode_references(wan, images, video, dev)

    text = wan.encode_text([prompt]).clone().float()
    null_text = wan.encode_text([""]).clone().float()
    aug_t = noise_aug if noise_aug is not None else (inf.get("noise_aug_ref", 600) if refs else
                                                     inf.get("noise_aug_plain", 200))
    autocast = dev.type == "cuda"
    branches_log: list[list[str]] = []

    def cb(n, tv, br):
        branches_log.append(br)
        if progress is not None:
            progress(n, steps)

    x = denoise(model, wan, lr_lat, text, null_text, refs, steps=steps, shift=shift, guidance=g, aug_t=aug_t,
                seed=seed, autocast=autocast, callback=cb, scheduler=sched)
    out = wan.decode_video(x)[0]                          # (3, tp, Hp, Wp) in [-1, 1]
    out = ((out[:, :t, :H, :W] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    hr = out.permute(1, 2, 3, 0).cpu().numpy()
    fsio.write_atomic(fsio.normalize(output), media.encode(hr, fps, crf=crf))
    return {"output": fsio.normalize(output), "frames": int(hr.shape[0]), "width": int(W), "height": int(H),
            "fps": fps, "steps": steps, "shift": shift, "scheduler": describe_scheduler(sched), "s_txt": g.s_txt,
            "s_ref": g.s_ref, "n_ref": g.n_ref,
            "noise_aug": int(aug_t), "references": [k for k, _ in refs], "checkpoint": info["path"],
            "ref_guided_steps": sum("null_ref" in b for b in branches_log), "wall_s": round(time.time() - t0, 2)}
