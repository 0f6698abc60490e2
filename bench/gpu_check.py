"""GPU check: do the paper's shapes fit on this GPU, and how fast do they run? One command.

    PYTHONPATH=. .venv/bin/python bench/gpu_check.py          # on a GPU node: <= 8 min on one H100/H200
    PYTHONPATH=. .venv/bin/python bench/gpu_check.py --tiny   # the same code on CPU with tiny models, seconds

``--tiny`` runs every part with the tiny random models of ``datakit models tiny`` (and tiny
MUSIQ / CLIP / DOVER views) at tiny shapes (SDEdit k 2 and 3; training clips of 5 and 9
frames): it checks that the script works, not how fast anything is; tests/test_gpu_check.py runs it.

Nothing is downloaded: every model is its real architecture at the released configuration,
built in memory with random weights (time and memory do not depend on the weights' values).

Parts (each runs on its own; a failure is recorded with its error and the next part runs):

1. ``sdedit`` — Wan 2.1 T2V 1.3B (transformer 30 layers of width 1536, VAE base width 96,
   UMT5-XXL text encoder), transformer and text encoder in bf16, VAE in float32, the paper's LR
   shape (77 frames at 832x480), k = 5 and 15 of N = 50, guidance 5: datakit's ``SDEditor`` with
   one clip per call and with ``batch`` clips per call, and diffusers' ``WanVideoToVideoPipeline``
   with one clip per call (``strength = (k + 0.5) / N``), on the same modules. Per clip: seconds,
   transformer seconds per denoising step, VAE encode and decode seconds, peak memory beyond the
   weights (with datakit's estimate of it, :meth:`WanT2V.memory_need`), transformer MFU, and the
   largest difference between datakit's and diffusers' x'.
2. ``scorers`` — MUSIQ, CLIP-IQA (pyiqa; CLIP RN50), DOVER on production HR clips (77 frames of
   1920x1080), at the score stage's batch sizes (MUSIQ / CLIP-IQA: ``iqa_batch`` frames per
   forward, ``iqa_frames`` frames per clip; DOVER: ``dover_batch`` clips per forward): clips/s of
   the model, and DOVER's view sampling (CPU) per clip. Q-Align runs where ``datakit.scoring``
   has it and its weights are on disk.
3. ``train`` — one optimiser step of the UniMMVSR model (``datakit.train``) built from the 1.3B
   transformer: float32 master weights, bf16 autocast, gradient checkpointing, AdamW and gradient
   clipping at ``pipelines/train_unimmvsr.yaml``'s settings, a t2v item at the stage-1 (21
   frames) and stage-4 (77 frames) shapes of the 1080p HR (1072x1920 after the trainer's cut to
   a multiple of 16). Seconds per step, target tokens per second, peak memory (weights, AdamW
   state and activations), MFU. VAE and text encoding are not in the step (the latents are
   given); the tiled VAE encode of one HR clip of each shape is timed separately.

FLOPs are counted for the transformer only (a multiply-add is 2 FLOPs). Per block, with S
video tokens, L text tokens, width D and FFN width F: self-attention projections 8·S·D²,
self-attention 4·S²·D, cross-attention projections 4·S·D² + 4·L·D², cross-attention 4·S·L·D,
FFN 4·S·D·F; plus the patch embedding and output projection, 2·S·D·p·(c_in + c_out) with p
the patch volume, the text projection 2·L·D·(text_dim + D) and the time embedding
2·D·(freq_dim + 7·D). (tests/test_gpu_check.py checks the count against PyTorch's FLOP
counter on the tiny model.) A training step counts 3 forwards (forward and backward); the recomputation
of gradient checkpointing is not counted (hardware FLOPs would add one forward). MFU =
FLOPs / (seconds × the GPU's dense bf16 peak, from a table of known GPUs or ``--peak-tflops``).

Writes the results as JSON (``--json``, default ``out/gpu_check.json``) and the section between
``<!-- gpu-check:start -->`` and ``<!-- gpu-check:end -->`` of ``docs/benchmarks.md`` (``--docs``;
with ``--tiny`` only when ``--docs`` is given). Parts that would start after ``--budget-s``
seconds are skipped and say so. Exit status 1 when a part failed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from common import write_section  # noqa: E402

PROMPT = "a man walks his dog along a city street at dusk, cars pass by"

SHAPES = {
    "full": {
        "sdedit": dict(frames=77, width=832, height=480, ks=[5, 15], steps=50, guidance=5.0, batch=2, text_len=512),
        "scorers": dict(frames=77, width=1920, height=1080, clips=8, iqa_frames=4, iqa_batch=8, dover_batch=4),
        "train": dict(height=1072, width=1920, text_len=512, stages=[["stage-1", 21], ["stage-4", 77]]),
    },
    "tiny": {
        "sdedit": dict(frames=5, width=48, height=32, ks=[2, 3], steps=50, guidance=5.0, batch=2, text_len=16),
        "scorers": dict(frames=9, width=96, height=64, clips=2, iqa_frames=2, iqa_batch=2, dover_batch=2),
        "train": dict(height=32, width=48, text_len=16, stages=[["stage-1", 5], ["stage-4", 9]]),
    },
}

#: dense bf16 peak TFLOPs (no sparsity), longest names first so "H100 PCIe" wins over "H100"
PEAK_BF16_TFLOPS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("GH200", 989.4), ("H200", 989.4),
                    ("H100", 989.4), ("H800", 989.4), ("H20", 148.0), ("B200", 2250.0), ("A100", 312.0),
                    ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("A10", 125.0)]


# ---------------------------------------------------------------------------- FLOPs

def transformer_flops(tokens: int, text_len: int, cfg, extra_in_channels: int = 0) -> float:
    """Forward FLOPs of a Wan transformer over one sequence (the formula in the module doc);
    ``extra_in_channels``: input channels added to the patch embedding (UniMMVSR's LR latent)."""
    d = int(cfg["num_attention_heads"]) * int(cfg["attention_head_dim"])
    f, n = int(cfg["ffn_dim"]), int(cfg["num_layers"])
    s, txt = float(tokens), float(text_len)
    block = 8 * s * d * d + 4 * s * s * d + 4 * s * d * d + 4 * txt * d * d + 4 * s * txt * d + 4 * s * d * f
    p = 1
    for v in cfg["patch_size"]:
        p *= int(v)
    io = 2 * s * d * p * (int(cfg["in_channels"]) + extra_in_channels + int(cfg["out_channels"]))
    conditions = 2 * txt * d * (int(cfg["text_dim"]) + d) + 2 * d * (int(cfg["freq_dim"]) + 7 * d)
    return n * block + io + conditions


def tokens_of(frames: int, height: int, width: int, cfg) -> int:
    pt, ph, pw = (int(v) for v in cfg["patch_size"])
    return (1 + (frames - 1) // 4) // pt * (height // 8 // ph) * (width // 8 // pw)


def peak_tflops(name: str | None, override: float | None) -> float | None:
    if override:
        return override
    for key, tf in PEAK_BF16_TFLOPS:
        if name and key in name:
            return tf
    return None


# ---------------------------------------------------------------------------- timing

class Clock:
    """Wall time with the device synchronised, and peak memory of the device."""

    def __init__(self, device):
        import torch

        self.torch, self.cuda = torch, device.type == "cuda"
        self.device = device

    def now(self) -> float:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def reset_peak(self) -> int:
        """Start a peak measurement; returns the bytes allocated now (the baseline)."""
        if not self.cuda:
            return 0
        self.torch.cuda.synchronize(self.device)
        self.torch.cuda.reset_peak_memory_stats(self.device)
        return self.torch.cuda.memory_allocated(self.device)

    def peak(self) -> int | None:
        return self.torch.cuda.max_memory_allocated(self.device) if self.cuda else None

    def free(self) -> None:
        import gc

        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()


class Probe:
    """Times every transformer forward and every VAE encode / decode call while installed."""

    def __init__(self, transformer, vae, clock: Clock):
        self.clock, self.vae = clock, vae
        self.forward, self.encode, self.decode = [], [], []
        start = {}
        self.hooks = [transformer.register_forward_pre_hook(lambda *a: start.__setitem__("t", clock.now())),
                      transformer.register_forward_hook(
                          lambda *a: self.forward.append(clock.now() - start["t"]))]
        for name, log in (("encode", self.encode), ("decode", self.decode)):
            setattr(vae, name, self._timed(getattr(vae, name), log))

    def _timed(self, fn, log):
        def run(*a, **k):
            t0 = self.clock.now()
            out = fn(*a, **k)
            log.append(self.clock.now() - t0)
            return out
        return run

    def reset(self) -> None:
        for log in (self.forward, self.encode, self.decode):
            log.clear()

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()
        for name in ("encode", "decode"):
            delattr(self.vae, name)     # the instance wrapper; the class method shows through again


class Budget:
    def __init__(self, seconds: float):
        self.t0, self.seconds = time.perf_counter(), seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.t0)


def frames_of(t: int, h: int, w: int, seed: int):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def gib(n) -> float | None:
    return None if n is None else round(n / 1024 ** 3, 2)


# ---------------------------------------------------------------------------- parts

def part_sdedit(ctx) -> dict:
    import numpy as np
    import torch
    from diffusers import WanVideoToVideoPipeline
    from PIL import Image

    import bench_sdedit
    from datakit.sdedit import Item, SDEditor, SDEditParams
    from datakit.sdedit.wan import WanT2V

    sp, dev, clock = ctx["shapes"]["sdedit"], ctx["device"], ctx["clock"]
    config = "tiny" if ctx["tiny"] else "wan2.1-1.3b"
    t0 = time.perf_counter()
    tok, text, transformer, vae, sched = bench_sdedit.build(config, full_text_encoder=not ctx["tiny"], device=str(dev))
    model = WanT2V.from_components(tok, text, transformer, vae, sched, model_id=f"random-{config}", device=str(dev),
                                   dtype="auto", max_sequence_length=sp["text_len"], synthetic=True)
    tcfg = dict(model.transformer.config)
    out = {"model": config, "build_s": round(time.perf_counter() - t0, 1), "shape": sp,
           "transformer_params": sum(p.numel() for p in model.transformer.parameters()),
           "text_encoder_params": sum(p.numel() for p in model.text_encoder.parameters()),
           "dtype": str(model.dtype).replace("torch.", ""), "vae_dtype": str(model.vae_dtype).replace("torch.", ""),
           "weights_gib": gib(torch.cuda.memory_allocated(dev)) if clock.cuda else None, "runs": []}
    pipe = WanVideoToVideoPipeline(tokenizer=tok, text_encoder=model.text_encoder, transformer=model.transformer,
                                   vae=model.vae, scheduler=type(sched).from_config(sched.config))
    pipe.set_progress_bar_config(disable=True)
    t, h, w, n_batch = sp["frames"], sp["height"], sp["width"], sp["batch"]
    clips = [frames_of(t, h, w, seed) for seed in range(n_batch)]
    tokens = tokens_of(t, h, w, tcfg)
    cfg_mult = 2 if sp["guidance"] > 1 else 1
    fwd = transformer_flops(tokens, sp["text_len"], tcfg)
    out.update(tokens_per_clip=tokens, forward_flops_per_sequence=fwd)

    def editor(k):
        return SDEditor(model, SDEditParams(steps=sp["steps"], k=k, guidance=sp["guidance"], base_width=w,
                                           base_height=h, base_area=None))

    def diffusers(k, frames, seed):
        res = pipe(video=[Image.fromarray(f) for f in frames], prompt=PROMPT, height=h, width=w,
                   num_inference_steps=sp["steps"], strength=(k + 0.5) / sp["steps"], guidance_scale=sp["guidance"],
                   generator=torch.Generator("cpu").manual_seed(seed), max_sequence_length=sp["text_len"],
                   output_type="np")
        return res.frames[0]

    probe = Probe(model.transformer, model.vae, clock)
    try:
        editor(1).run([Item(clips[0], PROMPT, 1)])           # warm-up: kernels, cuDNN choices, allocator
        diffusers(1, clips[0], 1)
        for i, k in enumerate(sp["ks"]):
            variants = [("datakit", 1), ("datakit_batched", n_batch), ("diffusers", 1)]
            if i > 0:
                variants = [v for v in variants if v[0] != "datakit_batched"]   # batching is shown at the first k
            results = {}
            for name, n in variants:
                if ctx["budget"].left() < 0:
                    out["runs"].append({"variant": name, "k": k, "skipped": "time budget spent"})
                    continue
                probe.reset()
                clock.free()
                base = clock.reset_peak()
                t_start = clock.now()
                if name == "diffusers":
                    results[name] = diffusers(k, clips[0], 1)
                else:
                    items = [Item(clips[j], PROMPT, 1 + j) for j in range(n)]
                    editor(k).run(items)
                    results[name] = items[0].out
                total = clock.now() - t_start
                peak = clock.peak()
                calls = len(probe.forward)
                flops = k * cfg_mult * n * fwd
                run = {"variant": name, "k": k, "clips": n, "s_per_clip": round(total / n, 4),
                       "transformer_calls": calls, "transformer_s_per_step": round(sum(probe.forward) / k, 4),
                       "transformer_s_per_clip": round(sum(probe.forward) / n, 4),
                       "vae_encode_s": round(sum(probe.encode) / n, 4), "vae_decode_s": round(sum(probe.decode) / n, 4),
                       "transformer_tflops": round(flops / 1e12, 2),
                       "peak_gib_beyond_weights": gib(None if peak is None else peak - base)}
                if name != "diffusers":
                    run["estimated_gib"] = gib(model.memory_need((w, h), t, sp["guidance"]).total(n))
                if ctx["peak_tflops"] and sum(probe.forward):
                    run["transformer_mfu"] = round(flops / (sum(probe.forward) * ctx["peak_tflops"] * 1e12), 4)
                out["runs"].append(run)
            if "datakit" in results and "diffusers" in results:
                ours = results["datakit"].astype(np.float64) / 255
                diff = float(np.abs(ours - results["diffusers"]).max())
                out.setdefault("max_abs_diff_vs_diffusers", {})[str(k)] = round(diff, 5)
    finally:
        probe.remove()
    by = {(r["variant"], r["k"]): r for r in out["runs"] if "s_per_clip" in r}
    for k in sp["ks"]:
        if ("datakit", k) in by and ("diffusers", k) in by:
            out.setdefault("diffusers_over_datakit", {})[str(k)] = round(
                by[("diffusers", k)]["s_per_clip"] / by[("datakit", k)]["s_per_clip"], 3)
        if ("datakit_batched", k) in by and ("datakit", k) in by:
            out.setdefault("single_over_batched", {})[str(k)] = round(
                by[("datakit", k)]["s_per_clip"] / by[("datakit_batched", k)]["s_per_clip"], 3)
    return out


def part_scorers(ctx) -> dict:
    import warnings

    import numpy as np
    import torch

    from datakit import scoring
    from datakit.scoring import dover
    from datakit.scoring.dover import DoverScorer, ViewParams
    from datakit.scoring.frames import sample_indices
    from datakit.scoring.iqa import ImageScorer

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    sp, dev, clock = ctx["shapes"]["scorers"], ctx["device"], ctx["clock"]
    pyiqa = _quiet_pyiqa()
    clip = frames_of(sp["frames"], sp["height"], sp["width"], 0)
    sampled = clip[sample_indices(len(clip), sp["iqa_frames"])]
    out = {"clip": [sp["frames"], sp["height"], sp["width"]], "clips": sp["clips"], "metrics": {}}
    tiny = ctx["tiny"]

    def image_metric(name, metric):
        scorer = ImageScorer(name, metric, str(dev), sp["iqa_batch"])
        scorer(sampled)                                         # warm-up
        base = clock.reset_peak()
        t0 = clock.now()
        for _ in range(sp["clips"]):
            scores = scorer(sampled)
        s = clock.now() - t0
        peak = clock.peak()
        return {"batch_frames": sp["iqa_batch"], "frames_per_clip": sp["iqa_frames"],
                "clips_per_s": round(sp["clips"] / s, 3), "finite": bool(np.isfinite(scores).all()),
                "peak_gib_beyond_weights": gib(None if peak is None else peak - base)}

    musiq_kw = dict(num_layers=1, hidden_size=32, mlp_dim=64, num_heads=2, longer_side_lengths=[64]) if tiny else {}
    out["metrics"]["musiq"] = image_metric("musiq", pyiqa.create_metric("musiq", device=str(dev), pretrained=False,
                                                                        **musiq_kw))
    with tempfile.TemporaryDirectory() as tmp:
        backbone = _clip_torchscript(Path(tmp) / "clip.pt", tiny)
        out["metrics"]["clipiqa"] = image_metric("clipiqa", pyiqa.create_metric("clipiqa", device=str(dev),
                                                                                backbone=str(backbone)))
        out["metrics"]["clipiqa"]["backbone"] = "tiny CLIP" if tiny else "CLIP RN50 (random weights)"

    params = (ViewParams(fragments=2, clip_len=4, num_clips=1, aesthetic_size=64, aesthetic_frames=4) if tiny
              else ViewParams())
    torch.manual_seed(0)
    scorer = DoverScorer(dover.build("dover").eval().to(dev), str(dev), params, 0, None, "dover")
    t0 = time.perf_counter()
    views = [scorer.views(clip) for _ in range(sp["clips"])]
    view_s = (time.perf_counter() - t0) / sp["clips"]
    b = sp["dover_batch"]
    scorer.raw(views[:b])                                       # warm-up
    base = clock.reset_peak()
    t0 = clock.now()
    for s in range(0, len(views), b):
        scorer.raw(views[s:s + b])
    model_s = clock.now() - t0
    peak = clock.peak()
    out["metrics"]["dover"] = {"batch_clips": b, "clips_per_s": round(len(views) / model_s, 3),
                               "views_s_per_clip_cpu": round(view_s, 4),
                               "clips_per_s_with_views": round(len(views) / (model_s + view_s * len(views)), 3),
                               "view_params": "tiny" if tiny else "released (7x7 fragments, 32 frames, 3 clips)",
                               "peak_gib_beyond_weights": gib(None if peak is None else peak - base)}

    qname = next((n for n in scoring.METRICS if n.replace("_", "").replace("-", "").lower() == "qalign"), None)
    if qname is None:
        out["metrics"]["qalign"] = {"skipped": "datakit.scoring has no Q-Align metric"}
    else:
        try:
            cs = scoring.ClipScorer([qname], scoring.ScoreOptions(device=str(dev), frames=sp["iqa_frames"],
                                                                  batch_size=sp["iqa_batch"]))
        except scoring.MissingWeights as e:
            out["metrics"]["qalign"] = {"skipped": f"weights not on disk: {str(e).splitlines()[0]}"}
        else:
            cs.score(clip, 16.0)                     # Q-Align's video mode samples 1 frame per second
            t0 = clock.now()
            cs.score_many([clip] * sp["clips"], 16.0)
            out["metrics"]["qalign"] = {"clips_per_s": round(sp["clips"] / (clock.now() - t0), 3),
                                        "frames_per_clip": sp["iqa_frames"], "models": cs.info().get("models")}
    clock.free()
    return out


def _quiet_pyiqa():
    import logging

    import pyiqa

    logging.getLogger("pyiqa").setLevel(logging.WARNING)
    return pyiqa


def _clip_torchscript(path: Path, tiny: bool) -> Path:
    """pyiqa's CLIP (RN50 as released, or tiny) with random weights, traced and saved as OpenAI's file is."""
    import warnings

    import clip
    import torch
    from pyiqa.archs.clip_model import CLIP

    if tiny:
        cfg = dict(embed_dim=32, image_resolution=224, vision_layers=(1, 1, 1, 1), vision_width=8,
                   vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=64,
                   transformer_heads=1, transformer_layers=1)
    else:
        cfg = dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                   vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=512,
                   transformer_heads=8, transformer_layers=12)
    torch.manual_seed(0)
    model = CLIP(**cfg).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (torch.rand(1, 3, 224, 224), clip.tokenize(["a photo"])), check_trace=False)
    traced.save(str(path))
    return path


def part_train(ctx) -> dict:
    import torch
    from diffusers import WanTransformer3DModel

    import bench_sdedit
    from datakit.sdedit import tiny as wan_tiny
    from datakit.train import config as train_config
    from datakit.train import model as train_model
    from datakit.train.data import Encoded
    from datakit.train.trainer import draw, flow_loss

    sp, dev, clock = ctx["shapes"]["train"], ctx["device"], ctx["clock"]
    cfg = train_config.load(REPO / "pipelines" / "train_unimmvsr.yaml")
    tcfg = wan_tiny.TINY_TRANSFORMER if ctx["tiny"] else bench_sdedit.WAN21_1_3B_TRANSFORMER
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(dev):
        base = WanTransformer3DModel(**tcfg)                     # float32 master weights, as the trainer keeps
    r = cfg.model.rope
    model = train_model.build(base, {"target": r.target, "images": r.images, "video": r.video}).to(dev)
    model.requires_grad_(True).train()
    model.gradient_checkpointing = True
    o = cfg.optim
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
    autocast = clock.cuda
    out = {"model": "tiny" if ctx["tiny"] else "wan2.1-1.3b", "build_s": round(time.perf_counter() - t0, 1),
           "params": sum(p.numel() for p in model.parameters()), "master_dtype": "float32",
           "autocast": "bfloat16" if autocast else None, "gradient_checkpointing": True,
           "optimizer": {"lr": o.lr, "betas": list(o.betas), "grad_clip": o.grad_clip}, "stages": []}
    h, w = sp["height"], sp["width"]
    z = int(base.config.in_channels)

    def step(enc) -> float:
        d = draw(cfg, enc, 0)
        loss = flow_loss(model, enc, d, autocast=autocast)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip or float("inf"))
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    for i, (name, frames) in enumerate(sp["stages"]):
        if ctx["budget"].left() < 0:
            out["stages"].append({"stage": name, "frames": frames, "skipped": "time budget spent"})
            continue
        lat = (1, z, 1 + (frames - 1) // 4, h // 8, w // 8)
        g = torch.Generator().manual_seed(i)
        enc = Encoded(hr=torch.randn(lat, generator=g).to(dev), lr=torch.randn(lat, generator=g).to(dev),
                      text=torch.randn(1, sp["text_len"], int(tcfg["text_dim"]), generator=g).to(dev),
                      index=i, task="t2v", key=f"gpu-check-{name}")
        repeats = 1 if (frames > 21 and not ctx["tiny"]) else 2
        if i == 0:
            step(enc)                                            # warm-up; also creates the AdamW state
        clock.free()
        clock.reset_peak()
        t_start = clock.now()
        losses = [step(enc) for _ in range(repeats)]
        s = (clock.now() - t_start) / repeats
        tokens = tokens_of(frames, h, w, tcfg)
        flops = 3 * transformer_flops(tokens, sp["text_len"], tcfg, extra_in_channels=z)
        rec = {"stage": name, "frames": frames, "hr": [h, w], "latent": list(lat[2:]), "tokens": tokens,
               "s_per_step": round(s, 4), "tokens_per_s": round(tokens / s, 1),
               "model_tflops_per_step": round(flops / 1e12, 2),
               "peak_gib": gib(clock.peak()), "repeats": repeats, "loss": round(losses[-1], 5)}
        if ctx["peak_tflops"]:
            rec["mfu"] = round(flops / (s * ctx["peak_tflops"] * 1e12), 4)
        out["stages"].append(rec)
    return out


def part_hr_vae(ctx) -> dict:
    """Tiled VAE encode of one HR clip per training shape (the trainer's HR path), float32."""
    import torch
    from diffusers import AutoencoderKLWan

    import bench_sdedit
    from datakit.sdedit import tiny as wan_tiny
    from datakit.sdedit import vae as vae_tiles

    sp, dev, clock = ctx["shapes"]["train"], ctx["device"], ctx["clock"]
    tiling = vae_tiles.VaeTiling(tile=32, stride=24) if ctx["tiny"] else vae_tiles.VaeTiling()
    with torch.device(dev):
        vae = AutoencoderKLWan(**(wan_tiny.TINY_VAE if ctx["tiny"] else bench_sdedit.WAN21_VAE)).eval()
    vae_tiles.apply(vae, tiling)
    out = {"tiling": tiling.describe(), "dtype": "float32", "runs": []}
    for name, frames in sp["stages"]:
        if ctx["budget"].left() < 0:
            out["runs"].append({"stage": name, "frames": frames, "skipped": "time budget spent"})
            continue
        x = torch.rand(1, 3, frames, sp["height"], sp["width"], generator=torch.Generator().manual_seed(0)) * 2 - 1
        x = x.to(dev)
        clock.free()
        base = clock.reset_peak()
        t0 = clock.now()
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
        s = clock.now() - t0
        peak = clock.peak()
        out["runs"].append({"stage": name, "frames": frames, "hr": [sp["height"], sp["width"]],
                            "latent": list(z.shape[2:]), "encode_s": round(s, 3),
                            "peak_gib_beyond_weights": gib(None if peak is None else peak - base)})
        del x, z
    return out


PARTS = {"sdedit": part_sdedit, "scorers": part_scorers, "train": part_train, "hr_vae": part_hr_vae}


# ---------------------------------------------------------------------------- machine and report

def machine(device) -> dict:
    import diffusers
    import psutil
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    m = {"host": platform.node(), "cpu": cpu, "cpus": os.cpu_count(),
         "ram_gib": round(psutil.virtual_memory().total / 1024 ** 3, 1), "python": platform.python_version(),
         "torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
         "device": str(device), "gpu": None}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        m.update(gpu=p.name, gpu_count=torch.cuda.device_count(), gpu_memory_gib=round(p.total_memory / 1024 ** 3, 1),
                 cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), sm=f"{p.major}.{p.minor}")
    try:
        import subprocess

        m["datakit_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                             text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        m["datakit_commit"] = None
    return m


def _cell(v) -> str:
    return "–" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def render(res: dict) -> str:
    m = res["machine"]
    where = (f"{m['gpu']} ({m['gpu_memory_gib']} GiB; CUDA {m['cuda']}), " if m.get("gpu") else "no GPU (CPU only), ")
    lines = ["## GPU check (`bench/gpu_check.py`)", "",
             f"Command: `{res['command']}` ("
             + ("tiny models on CPU: checks the code, not the speed" if res["tiny"]
                else "released configurations, random weights") + ").",
             f"Machine: {where}{m['cpu']}, {m['cpus']} CPUs, {m['ram_gib']} GiB RAM; torch {m['torch']}, "
             f"diffusers {m['diffusers']}, transformers {m['transformers']}; datakit {m.get('datakit_commit')}.",
             f"Dense bf16 peak used for MFU: {_cell(res['peak_tflops'])} TFLOPs. Wall time of the whole check: "
             f"{res['wall_s']:.0f} s. FLOPs and MFU as stated in the script's docstring "
             "(transformer only, 2 FLOPs per multiply-add; training counts 3 forwards).", ""]
    for name, part in res["parts"].items():
        if "error" in part:
            lines += [f"**{name}: failed** — `{part['error']}`", ""]
            continue
        if name == "sdedit":
            sp = part["shape"]
            lines += [f"### SDEdit: datakit vs diffusers `WanVideoToVideoPipeline` ({part['model']}, "
                      f"{sp['frames']} frames at {sp['width']}x{sp['height']}, N = {sp['steps']}, "
                      f"guidance {sp['guidance']:g}, "
                      f"{part['dtype']} transformer, {part['vae_dtype']} VAE)", "",
                      f"{part['tokens_per_clip']} video tokens per clip; one transformer forward over one sequence = "
                      f"{part['forward_flops_per_sequence'] / 1e12:.1f} TFLOPs. Weights on the device: "
                      f"{_cell(part['weights_gib'])} GiB.", "",
                      "| variant | k | clips/call | s/clip | transformer s/step | VAE enc s | VAE dec s "
                      "| peak GiB beyond weights (estimate) | transformer MFU |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in part["runs"]:
                if "skipped" in r:
                    lines.append(f"| {r['variant']} | {r['k']} | – | skipped: {r['skipped']} | | | | | |")
                    continue
                est = f" ({_cell(r.get('estimated_gib'))})" if "estimated_gib" in r else ""
                lines.append(f"| {r['variant']} | {r['k']} | {r['clips']} | {r['s_per_clip']:.3f} | "
                             f"{r['transformer_s_per_step']:.3f} | {r['vae_encode_s']:.3f} | {r['vae_decode_s']:.3f} | "
                             f"{_cell(r['peak_gib_beyond_weights'])}{est} | {_cell(r.get('transformer_mfu'))} |")
            lines += ["", f"diffusers s/clip ÷ datakit s/clip: {part.get('diffusers_over_datakit')}; one clip per call "
                      f"÷ batched, per clip: {part.get('single_over_batched')}; largest |datakit − diffusers| of x' in "
                      f"[0, 1] (8-bit output): {part.get('max_abs_diff_vs_diffusers')}.", ""]
        elif name == "scorers":
            lines += [f"### Scorers on the device ({part['clips']} clips of {part['clip'][0]} frames at "
                      f"{part['clip'][2]}x{part['clip'][1]})", "",
                      "| metric | batch | clips/s (model) | notes |", "|---|---|---|---|"]
            for mname, r in part["metrics"].items():
                if "skipped" in r:
                    lines.append(f"| {mname} | – | – | skipped: {r['skipped']} |")
                elif mname == "dover":
                    lines.append(f"| dover | {r['batch_clips']} clips | {r['clips_per_s']} | view sampling "
                                 f"{r['views_s_per_clip_cpu']} s/clip on CPU; "
                                 f"{r['clips_per_s_with_views']} clips/s with it; "
                                 f"{r['view_params']} views |")
                elif mname == "qalign":
                    lines.append(f"| qalign | – | {r['clips_per_s']} | {r.get('frames_per_clip')} frames per clip |")
                else:
                    backbone = f"; {r['backbone']}" if "backbone" in r else ""
                    lines.append(f"| {mname} | {r['batch_frames']} frames | {r['clips_per_s']} | "
                                 f"{r['frames_per_clip']} frames per clip{backbone} |")
            lines.append("")
        elif name == "train":
            lines += [f"### Trainer: one optimiser step of UniMMVSR ({part['model']}, {part['params']:,} parameters, "
                      f"{part['master_dtype']} master weights, autocast {_cell(part['autocast'])}, "
                      "gradient checkpointing)",
                      "", "| stage | frames | HR | latent | tokens | s/step | tokens/s | peak GiB | MFU |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in part["stages"]:
                if "skipped" in r:
                    lines.append(f"| {r['stage']} | {r['frames']} | skipped: {r['skipped']} | | | | | | |")
                    continue
                latent = "x".join(map(str, r["latent"]))
                lines.append(f"| {r['stage']} | {r['frames']} | {r['hr'][1]}x{r['hr'][0]} | {latent} | "
                             f"{r['tokens']} | {r['s_per_step']:.3f} | {r['tokens_per_s']:.0f} | "
                             f"{_cell(r['peak_gib'])} | "
                             f"{_cell(r.get('mfu'))} |")
            lines.append("")
        elif name == "hr_vae":
            t = part["tiling"]
            lines += [f"### Tiled VAE encode of one HR clip (tile {t['tile']}, stride {t['stride']}, "
                      f"{part['dtype']})", "",
                      "| stage | frames | HR | s | peak GiB beyond weights |", "|---|---|---|---|---|"]
            for r in part["runs"]:
                if "skipped" in r:
                    lines.append(f"| {r['stage']} | {r['frames']} | skipped: {r['skipped']} | | |")
                    continue
                lines.append(f"| {r['stage']} | {r['frames']} | {r['hr'][1]}x{r['hr'][0]} | {r['encode_s']:.2f} | "
                             f"{_cell(r['peak_gib_beyond_weights'])} |")
            lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main

def run_parts(names: list[str], ctx: dict, res: dict) -> bool:
    """Run each part, recording its result or its error; True when one failed."""
    failed = False
    for name in names:
        if ctx["budget"].left() < 0:
            res["parts"][name] = {"error": "skipped: time budget spent"}
            continue
        print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            res["parts"][name] = PARTS[name](ctx)
        except Exception as e:      # noqa: BLE001 -- a failed part is a result; the other parts still run
            failed = True
            traceback.print_exc()
            res["parts"][name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
        ctx["clock"].free()                   # the part's models went with its frame
        res["parts"][name]["part_s"] = round(time.perf_counter() - t, 1)
        print(f"gpu_check: {name} done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    return failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:4]))
    ap.add_argument("--tiny", action="store_true", help="tiny models and shapes on the CPU: checks the code in seconds")
    ap.add_argument("--device", default="auto", help="torch device (default: cuda if present, cpu with --tiny)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"comma-separated parts to run (default: {','.join(PARTS)})")
    ap.add_argument("--json", default=str(REPO / "out" / "gpu_check.json"),
                    help="results file (default out/gpu_check.json)")
    ap.add_argument("--docs", help="markdown file whose gpu-check section is replaced "
                                   "(default docs/benchmarks.md; with --tiny none unless given)")
    ap.add_argument("--budget-s", type=float, default=400.0,
                    help="parts and runs that would start after this many seconds are skipped (default 400)")
    ap.add_argument("--peak-tflops", type=float, help="dense bf16 peak of the GPU for MFU (default: from its name)")
    args = ap.parse_args(argv)

    import torch

    from datakit.sdedit.wan import resolve_device

    unknown = [p for p in args.parts.split(",") if p not in PARTS]
    if unknown:
        ap.error(f"--parts: unknown {', '.join(unknown)}; known: {', '.join(PARTS)}")
    device = torch.device("cpu") if (args.tiny and args.device == "auto") else resolve_device(args.device)
    if device.type != "cuda" and not args.tiny:
        print("gpu_check: no CUDA device; run on a GPU node, or pass --tiny to check the code on CPU", file=sys.stderr)
        return 2
    mach = machine(device)
    ctx = {"tiny": args.tiny, "device": device, "clock": Clock(device), "budget": Budget(args.budget_s),
           "shapes": SHAPES["tiny" if args.tiny else "full"],
           "peak_tflops": peak_tflops(mach.get("gpu"), args.peak_tflops) if device.type == "cuda" else None}
    res = {"command": "python bench/gpu_check.py" + (" --tiny" if args.tiny else ""), "tiny": args.tiny,
           "machine": mach, "peak_tflops": ctx["peak_tflops"], "shapes": ctx["shapes"], "parts": {}}
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    if args.tiny:
        torch.set_num_threads(1)        # tiny models: one thread is faster than several on a shared CPU
    try:
        failed = run_parts(args.parts.split(","), ctx, res)
    finally:
        torch.set_num_threads(threads)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2, default=str) + "\n")
    docs = args.docs or (None if args.tiny else str(REPO / "docs" / "benchmarks.md"))
    if docs:
        write_section(Path(docs), "gpu-check", render(res))
    print(f"gpu_check: results in {args.json}" + (f", section in {docs}" if docs else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
