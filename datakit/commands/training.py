"""Training the UniMMVSR model on the shards, and upscaling with it."""
from __future__ import annotations

import json
import os
import sys

from . import fail, status

EXIT_INTERRUPTED = 130      # the shell's code for a command stopped by Ctrl-C (128 + SIGINT)


def cmd_train(args) -> int:
    from ..train import config as tconfig

    overrides = list(args.set or [])
    if args.output:
        overrides.append("output=" + json.dumps(args.output))
    if args.resume:
        overrides.append("checkpoint.resume=" + json.dumps(args.resume))
    if args.workers:
        overrides.append(f"distributed.workers={args.workers}")
    if args.address:
        overrides.append("distributed.address=" + json.dumps(args.address))
    try:
        cfg = tconfig.load(args.config, overrides)
    except tconfig.TrainConfigError as e:
        return fail(str(e))
    if not os.path.isdir(cfg.base_model):
        return fail(f"base_model {cfg.base_model}: not a directory (a diffusers Wan 2.1 T2V folder; "
                     "`datakit models tiny DIR` writes a tiny one)")
    from ..sdedit import ModelError
    from ..train.checkpoint import CheckpointError
    from ..train.control import TrainingInterrupted
    from ..train.data import DataError
    from ..train.sampler import SamplerError
    from ..train.trainer import train

    try:
        res = train(cfg)
    except (DataError, CheckpointError, ModelError, SamplerError) as e:
        return fail(str(e))
    except TrainingInterrupted as e:
        print(f"datakit: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if res.get("interrupted"):
        print(f"datakit: {TrainingInterrupted(res.get('end_step'), res.get('checkpoint'))}", file=sys.stderr)
        return EXIT_INTERRUPTED
    loss = res.get("last_loss")
    print(f"{cfg.name}: trained to step {res.get('end_step')} of {cfg.total_steps} on {res['workers']} worker(s) "
          f"in {res['wall_s']:.1f}s" + (f", last loss {loss:.4f}" if loss is not None else ""))
    print(f"checkpoint: {res.get('checkpoint')}")
    return 0

def cmd_cache_latents(args) -> int:
    from ..train import config as tconfig

    try:
        cfg = tconfig.load(args.config, list(args.set or []))
    except tconfig.TrainConfigError as e:
        return fail(str(e))
    if not os.path.isdir(cfg.base_model):
        return fail(f"base_model {cfg.base_model}: not a directory (a diffusers Wan 2.1 T2V folder)")
    if args.workers is not None and args.workers < 0:
        return fail(f"--workers {args.workers}: must be 0 (this process) or more")
    from ..sdedit import ModelError
    from ..train.cache import build_cache
    from ..train.data import DataError

    bar = None

    def progress(done, total):
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(desc="cache-latents", unit="shard", total=total, file=sys.stderr)
        bar.update(1)

    try:
        res = build_cache(cfg, workers=args.workers or 0, device=args.device, progress=progress)
    except (DataError, ModelError) as e:
        return fail(str(e))
    finally:
        if bar is not None:
            bar.close()
    print(f"latent cache {res['cache_id']}: {res['shards_written']} shard(s) written "
          f"({res['shards_total'] - res['shards_written']} already cached), {res['samples']} sample(s), "
          f"{res['bytes'] / 2**20:.1f} MiB in {res['wall_s']:.1f}s; train from it with "
          f"--set data.latent_cache.use=true")
    for d in res["dirs"]:
        print(f"  {d}")
    return 0


def cmd_upscale(args) -> int:
    from .. import fsio

    for label, uri in [("--lr", args.lr), ("--ref-video", args.ref_video), *[("--ref", r) for r in args.ref or []]]:
        if uri and not fsio.exists(uri):
            return fail(f"{label} {uri}: not found")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not fsio.is_remote(args.out) and not os.path.isdir(out_dir):
        return fail(f"-o {args.out}: folder {out_dir} does not exist")
    from ..media import MediaError
    from ..sdedit import ModelError
    from ..train.checkpoint import CheckpointError
    from ..train.infer import upscale
    from ..train.sampler import SamplerError

    if not args.checkpoint and not args.base_model:
        return fail("give --checkpoint DIR (a trained model), or --base-model DIR alone for the untrained baseline")
    bar = None
    loading = status("loading the model, encoding the LR and the references", quiet=args.quiet).__enter__()

    def progress(n, total):
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            loading.__exit__(None, None, None)
            bar = tqdm(desc="upscale", unit="step", total=total, file=sys.stderr)
        bar.update(1)

    try:
        try:
            res = upscale(args.checkpoint, args.lr, args.prompt, args.out, ref_images=args.ref or [],
                          ref_video=args.ref_video, steps=args.steps, s_txt=args.s_txt, s_ref=args.s_ref,
                          n_ref=args.n_ref, shift=args.shift, noise_aug=args.noise_aug, scale=args.scale,
                          seed=args.seed, device=args.device, base_model=args.base_model,
                          progress=None if args.quiet else progress, sampler=args.sampler, start=args.start,
                          frames=args.frames)
        finally:                     # the status line and the bar go before any message
            loading.__exit__(None, None, None)
            if bar is not None:
                bar.close()
    except (CheckpointError, ModelError, SamplerError, ValueError) as e:
        return fail(str(e))
    except MediaError as e:
        return fail(f"{e.reason}: {e.detail}")
    refs = ", ".join(res["references"]) or "none"
    print(f"{res['output']}: {res['width']}x{res['height']}, {res['frames']} frames; {res['steps']} steps, "
          f"s_txt {res['s_txt']:g}, s_ref {res['s_ref']:g} for {res['ref_guided_steps']} steps, "
          f"noise-aug t {res['noise_aug']}, references: {refs}; sampler {res['scheduler']['class']}; "
          f"checkpoint {res['checkpoint']}")
    return 0


def register(sub) -> None:
    """Add this module's verbs to the ``datakit`` parser."""
    tr = sub.add_parser("train", help="train the UniMMVSR model on datakit shards (pipelines/train_*.yaml)",
                        description="Train the bundled UniMMVSR model from a training config: a Wan 2.1 T2V base "
                                    "model, dataset roots written by `datakit run`, and stages (steps, frames, task "
                                    "mixture). One worker trains in this process; distributed.workers > 1 runs Ray "
                                    "Train (distributed.strategy: ddp, or fsdp to shard the model). Writes "
                                    "OUTPUT/checkpoints/step-N/ (safetensors weights and optimizer state, sharded "
                                    "per worker under fsdp; trainer.json) and OUTPUT/metrics.jsonl; rerunning the "
                                    "same command resumes from the latest checkpoint. Ctrl-C (or creating "
                                    "OUTPUT/STOP) stops every worker after its current step with a checkpoint and "
                                    "exits 130; a second Ctrl-C stops at once and says how many steps were lost.")
    tr.add_argument("config", help="training config YAML (e.g. pipelines/train_tiny.yaml)")
    tr.add_argument("--output", metavar="URI", help="output folder (replaces the config's output)")
    tr.add_argument("--resume", metavar="auto|never|DIR",
                    help="auto: the latest checkpoint in the output (default); never; or a checkpoint folder")
    tr.add_argument("--workers", type=int, metavar="N", help="training workers (> 1: Ray Train)")
    tr.add_argument("--address", metavar="auto|HOST:PORT", help="train on an existing Ray cluster")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a config value, e.g. optim.lr=5e-5 or stages.0.steps=100 (repeatable)")
    tr.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    tr.set_defaults(func=cmd_train)

    ca = sub.add_parser("cache-latents", help="store VAE latents and text embeddings of a corpus for training "
                                              "(data.latent_cache)",
                        description="Encode, once, what every training step would otherwise encode: for each sample "
                                    "of the config's dataset roots, the VAE latents of the HR and the bilinearly "
                                    "upscaled LR over fixed frame windows of each stage length (whole frames, cut "
                                    "to a multiple of 16 about the centre) and the caption's text embedding, with "
                                    "the config's base model and VAE settings. Writes ROOT/latents/<cache id>/ "
                                    "beside the shards (docs/FORMAT.md); shards already cached are skipped. Train "
                                    "from it with --set data.latent_cache.use=true (and the same settings); "
                                    "reference augmentation and noise augmentation still happen every step.")
    ca.add_argument("config", help="training config YAML (e.g. pipelines/train_unimmvsr.yaml)")
    ca.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a config value, as for `datakit train` (repeatable)")
    ca.add_argument("--workers", type=int, metavar="N",
                    help="Ray actors encoding shards in parallel, one GPU each on a GPU cluster (default 0: this "
                         "process)")
    ca.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N for --workers 0 (default auto)")
    ca.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ca.set_defaults(func=cmd_cache_latents)

    up = sub.add_parser("upscale", help="upscale a video with a trained checkpoint (text, ID images, reference video)",
                        description="Super-resolve LR.mp4 by --scale with a checkpoint of `datakit train`, guided by "
                                    "the prompt and optional ID images and reference video: independent "
                                    "text/reference classifier-free guidance, reference guidance for the first "
                                    "--n-ref steps only, the LR noise-augmented to --noise-aug. Defaults come from "
                                    "the checkpoint (paper: 50 steps, shift 1.0, s_txt 3, s_ref 1, n_ref 15, "
                                    "noise-aug 600 with references, 200 without). Writes an H.264 MP4 with the "
                                    "LR's frame count and rate. Without --checkpoint, --base-model runs the untrained "
                                    "baseline.")
    up.add_argument("--checkpoint", metavar="DIR",
                    help="a checkpoint folder, or a training output (its latest checkpoint); without it, "
                         "--base-model gives the untrained baseline (the T2V weights, LR input channels zero)")
    up.add_argument("--lr", required=True, metavar="LR.mp4", help="the low-resolution video")
    up.add_argument("--prompt", required=True, metavar="TEXT", help="text prompt (caption of the video)")
    up.add_argument("--ref", action="append", metavar="IMG", help="ID reference image (repeatable)")
    up.add_argument("--ref-video", metavar="V.mp4", help="reference video (editing task)")
    up.add_argument("-o", "--out", required=True, metavar="OUT", help="output video (.mp4)")
    up.add_argument("--scale", type=int, metavar="N", help="output size = LR size x N (default: checkpoint's, 4)")
    up.add_argument("--steps", type=int, metavar="N", help="denoising steps (default 50)")
    up.add_argument("--s-txt", type=float, metavar="S", help="text guidance scale (default 3.0)")
    up.add_argument("--s-ref", type=float, metavar="S", help="reference guidance scale (default 1.0)")
    up.add_argument("--n-ref", type=int, metavar="N", help="reference guidance for the first N steps (default 15)")
    up.add_argument("--shift", type=float, metavar="S", help="timestep shift (default 1.0)")
    up.add_argument("--noise-aug", type=int, metavar="T",
                    help="LR noise-augmentation timestep 0-1000 (default 600 with references, 200 without)")
    up.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    up.add_argument("--start", type=float, default=0.0, metavar="SECONDS",
                    help="upscale from this time in the LR (default 0)")
    up.add_argument("--frames", type=int, default=None, metavar="N",
                    help="upscale N frames (default: all; the model takes at most 77 at once)")
    up.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    up.add_argument("--base-model", metavar="DIR", help="Wan base model folder, if not where the checkpoint says "
                                                        "(alone: the untrained baseline to compare checkpoints with)")
    up.add_argument("--sampler", metavar="CLASS",
                    help="diffusers scheduler class to sample with, in flow-matching mode (default: the "
                         "checkpoint's inference.sampler, the base model's own; the paper's PNDM has no flow mode)")
    up.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    up.set_defaults(func=cmd_upscale)
