"""Benchmark SDEdit: seconds per clip through datakit's SDEditor and through diffusers'
``WanVideoToVideoPipeline`` called once per clip, on the same components in the same run.

Models are built in memory with random weights (nothing is downloaded):

* ``--config tiny``: the tiny Wan pipeline of ``datakit models tiny`` (diffusers' test sizes);
* ``--config wan2.1-1.3b``: the Wan 2.1 T2V 1.3B transformer configuration (30 layers, 12 heads
  of 128, FFN 8960, text dim 4096) and the released VAE configuration (base_dim 96). The text
  encoder is a 2-layer UMT5 with the real width (d_model 4096) unless ``--full-text-encoder``
  asks for UMT5-XXL (24 layers, ~5.7B parameters): text encoding runs once per clip and its
  cost is small next to k (or 2k with guidance) transformer passes over the video tokens.

Modes:

* ``full`` (default): whole clips, k steps of N, datakit per clip, datakit batched
  (``--batch`` equal-shaped clips), and the diffusers pipeline per clip (``strength = (k+0.5)/N``);
* ``forward``: one transformer forward (cond and uncond batched when guidance > 1) and one VAE
  encode + decode at the given shape; seconds per clip ≈ k·forward + VAE. Use it where a full
  clip is too slow (a 1.3B model on a CPU).

Examples::

    python bench/bench_sdedit.py --config tiny --frames 17 --height 64 --width 112 --k 5 --batch 4
    python bench/bench_sdedit.py --config wan2.1-1.3b --mode forward --frames 5 --height 128 --width 224
    python bench/bench_sdedit.py --config wan2.1-1.3b --device cuda --frames 77 --height 480 --width 832 --k 5
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


#: Wan 2.1 T2V 1.3B, as released (``Wan2.1-T2V-1.3B-Diffusers``): transformer, VAE, UMT5-XXL text encoder.
WAN21_1_3B_TRANSFORMER = dict(
    patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
WAN21_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                 temperal_downsample=[False, True, True])
UMT5_XXL = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_heads=64, num_layers=24,
                relative_attention_num_buckets=32, feed_forward_proj="gated-gelu")


def tokenizer():
    from transformers import PreTrainedTokenizerFast

    from datakit import tiny

    return PreTrainedTokenizerFast(tokenizer_object=tiny.word_tokenizer(["<pad>", "</s>", "<unk>"], template="$A </s>"),
                                   pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512)


def build(config: str, full_text_encoder: bool, seed: int = 0, device: str = "cpu"):
    """(tokenizer, text encoder, transformer, VAE, scheduler) with random weights, built on ``device``
    (building a 1.3B model on the GPU takes seconds, on a CPU about a minute)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from datakit.sdedit import tiny as wan_tiny

    tok = tokenizer()
    torch.manual_seed(seed)
    with torch.device(device):
        if config == "tiny":
            vae = AutoencoderKLWan(**wan_tiny.TINY_VAE)
            transformer = WanTransformer3DModel(**wan_tiny.TINY_TRANSFORMER)
            text = UMT5EncoderModel(UMT5Config(**{**wan_tiny.TINY_TEXT, "vocab_size": len(tok)}))
        elif config == "wan2.1-1.3b":
            vae = AutoencoderKLWan(**WAN21_VAE)
            transformer = WanTransformer3DModel(**WAN21_1_3B_TRANSFORMER)
            # the real encoder (24 layers, ~5.7B parameters), or 2 layers at its width: text encoding runs
            # once per clip, small next to k (2k with guidance) transformer passes over the video tokens
            text_cfg = UMT5_XXL if full_text_encoder else {**UMT5_XXL, "num_layers": 2, "vocab_size": len(tok)}
            text = UMT5EncoderModel(UMT5Config(**text_cfg))
        else:
            raise SystemExit(f"unknown --config {config}")
    sched = UniPCMultistepScheduler(**wan_tiny.WAN21_SCHEDULER)
    return tok, text.eval(), transformer.eval(), vae.eval(), sched


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return out


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", choices=["tiny", "wan2.1-1.3b"], default="tiny")
    ap.add_argument("--mode", choices=["full", "forward"], default="full")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", help="denoiser dtype (auto: bf16 on GPU, float32 on CPU)")
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=112)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=4, help="clips per batched datakit call")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-sequence-length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--full-text-encoder", action="store_true")
    ap.add_argument("--skip-diffusers", action="store_true")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from datakit.sdedit import Item, SDEditor, SDEditParams
    from datakit.sdedit import core
    from datakit.sdedit.wan import WanT2V, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    tok, text, transformer, vae, sched = build(args.config, args.full_text_encoder,
                                               device=str(resolve_device(args.device)))
    model = WanT2V.from_components(tok, text, transformer, vae, sched, model_id=f"random-{args.config}",
                                   device=args.device, dtype=args.dtype,
                                   max_sequence_length=args.max_sequence_length, synthetic=True)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.transformer.parameters())
    res = {"config": args.config, "mode": args.mode, "device": str(model.device), "dtype": str(model.dtype),
           "transformer_params": n_params, "frames": args.frames, "height": args.height, "width": args.width,
           "steps": args.steps, "k": args.k, "guidance": args.guidance, "batch": args.batch,
           "max_sequence_length": args.max_sequence_length, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "build_s": round(build_s, 2),
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    print(json.dumps(res), file=sys.stderr)
    rng = np.random.default_rng(0)
    frames = (rng.random((args.frames, args.height, args.width, 3)) * 255).astype(np.uint8)
    prompt = "a man walks his dog along a city street at dusk, cars pass by"

    if args.mode == "forward":
        nf = core.valid_frames(args.frames, model.temporal_stride)
        x = core.to_model_video(frames, (args.width, args.height), nf, model.device)
        emb = model.encode_text([prompt])
        z = model.encode_video(x)
        b = 2 if args.guidance > 1 else 1
        zz, tt, ee = torch.cat([z] * b), torch.full((b,), 500, device=model.device), torch.cat([emb] * b)
        res["latent_shape"] = list(z.shape)
        res["tokens"] = int(z.shape[2] * z.shape[3] * z.shape[4] // 4)
        res["forward_s"] = timed(lambda: model.predict(zz, tt, ee), args.repeat)
        res["vae_encode_decode_s"] = timed(lambda: model.decode_video(model.encode_video(x)), max(1, args.repeat - 1))
        res["text_encode_s"] = timed(lambda: model.encode_text([prompt]), args.repeat)
        f = statistics.median(res["forward_s"])
        res["estimated_s_per_clip"] = round(args.k * f + statistics.median(res["vae_encode_decode_s"])
                                            + statistics.median(res["text_encode_s"]), 3)
    else:
        params = SDEditParams(steps=args.steps, k=args.k, guidance=args.guidance, base_width=args.width,
                              base_height=args.height, base_area=None)
        ed = SDEditor(model, params)
        batch = [Item(frames, prompt, s) for s in range(args.batch)]
        runs = {"datakit_per_clip_s": (lambda: ed.run([Item(frames, prompt, 1)]), 1),
                "datakit_batched_per_clip_s": (lambda: ed.run(batch), args.batch)}
        if not args.skip_diffusers:
            from diffusers import WanVideoToVideoPipeline
            from PIL import Image

            pipe = WanVideoToVideoPipeline(tokenizer=tok, text_encoder=model.text_encoder,
                                           transformer=model.transformer, vae=model.vae,
                                           scheduler=type(sched).from_config(sched.config))
            pipe.set_progress_bar_config(disable=True)
            video = [Image.fromarray(f) for f in frames]

            def run_pipe():
                pipe(video=video, prompt=prompt, height=args.height, width=args.width,
                     num_inference_steps=args.steps, strength=(args.k + 0.5) / args.steps,
                     guidance_scale=args.guidance, generator=torch.Generator("cpu").manual_seed(1),
                     max_sequence_length=args.max_sequence_length, output_type="np")

            runs["diffusers_per_clip_s"] = (run_pipe, 1)
        calls = [0]
        hook = model.transformer.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
        for name, (fn, _) in runs.items():                    # warm-up, and transformer calls per run
            calls[0] = 0
            fn()
            sync()
            res[name[:-2] + "_transformer_calls_per_run"] = calls[0]   # the batched run holds --batch clips
        hook.remove()
        for name in runs:
            res[name] = []
        for _ in range(args.repeat):                          # interleaved: shared-machine noise hits all alike
            for name, (fn, n) in runs.items():
                res[name].append(timed(fn, 1)[0] / n)
    for key in [k for k in res if k.endswith("_s") and isinstance(res[k], list)]:
        res[key] = [round(v, 4) for v in res[key]]
        res[key[:-2] + "_median_s"] = round(statistics.median(res[key]), 4)
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
