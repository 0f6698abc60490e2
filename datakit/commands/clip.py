"""Single-clip verbs: one stage on one clip, for inspection and tuning."""
from __future__ import annotations

import json
import os
import sys

from . import EXIT_FAILED, fail, status


def cmd_refs(args) -> int:
    from pydantic import ValidationError

    from ..media import MediaError
    from ..refs.idrefs import IdRules
    from ..refs.mask2former import ModelNotFound
    from ..refs.backends import make_segmenter
    from ..refs.segment import Mask2FormerConfig, OpenCVConfig
    from ..refs.single import frame_refs, read_frame

    if not 0 <= args.min_area <= 1 or args.max_ids < 1 or args.margin < 0:
        return fail("--min-area must be within 0..1, --max-ids at least 1 and --margin not negative")
    try:
        frame, where = read_frame(args.input, args.frame)
    except ValueError as e:
        return fail(str(e))
    except MediaError as e:
        return fail(f"{args.input}: {e}")
    try:
        background = tuple(int(v) for v in args.background.split(","))
        if len(background) != 3 or not all(0 <= v <= 255 for v in background):
            raise ValueError
    except ValueError:
        return fail(f"--background {args.background!r}: expected R,G,B with values 0..255")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    try:
        if args.segmenter == "opencv":
            cfg = OpenCVConfig(classes=classes)
        else:
            cfg = Mask2FormerConfig(classes=classes, mode=args.mode, threshold=args.threshold, device=args.device,
                                    **({"model": args.model} if args.model else {}))
        rules = IdRules(min_area=args.min_area, max_ids=args.max_ids, margin=args.margin, background=background)
        with status(f"loading the {args.segmenter} segmenter"):
            segmenter = make_segmenter(cfg, min_area=args.min_area)
    except ValidationError as e:
        err = e.errors()[0]
        return fail(f"--{err['loc'][0] if err['loc'] else 'segmenter'}: {err['msg']}")
    except (ModelNotFound, ValueError) as e:
        return fail(str(e))
    with status(f"segmenting frame {args.frame} ({segmenter.backend})"):
        doc = frame_refs(frame, segmenter, rules, args.out, where)
    for row in doc["ids"]:
        print(f"{row['member']}  {row['label']:<8} score {row['score']:<8g} box {row['box']}  "
              f"area {100 * row['area_frac']:.1f}%  ({row['detector']})")
    if not doc["ids"]:
        dropped = ", ".join(f"{n} {why}" for why, n in doc["dropped"].items())
        print(f"datakit: no usable ID in frame {args.frame} of {args.input} ({doc['found']} found"
              + (f"; dropped {dropped}" if dropped else "") + f"); see {args.out}/overlay.png", file=sys.stderr)
        return EXIT_FAILED
    print(f"{len(doc['ids'])} ID crops from frame {args.frame} of {args.input} ({segmenter.backend}) in {args.out}")
    return 0

def _score_metrics(args):
    """Metric names from --metrics (comma lists, repeatable) or the --profile; raises ValueError."""
    from ..scoring import WEIGHT_FREE, check_metrics

    metrics = [m.strip() for arg in (args.metrics or []) for m in arg.split(",") if m.strip()]
    prof = None
    if args.profile:
        from ..scoring import profiles

        prof = profiles.load(args.profile)
        metrics = metrics or list(prof.score.metrics)
    return check_metrics(metrics or WEIGHT_FREE), prof

def cmd_score(args) -> int:
    from ..media import MediaError, probe, read_span
    from ..scoring import METRICS, SCORE_KEYS, ClipScorer, ScoreOptions
    from ..scoring.profiles import ProfileError
    from ..scoring.weights import MissingWeights, missing

    try:
        metrics, prof = _score_metrics(args)
    except (ValueError, ProfileError) as e:
        return fail(str(e))
    if args.num_frames < 1 or (args.frames is not None and args.frames < 1) or args.start < 0:
        return fail("--num-frames and --frames must be at least 1, --start not negative")
    if args.source_fps is not None and args.source_fps <= 0:
        return fail("--source-fps must be positive")
    problems = missing(metrics, args.dover_variant, args.dover_weights, args.qalign_model)
    if problems:
        return fail("; ".join(problems) + " (nothing is downloaded; `datakit models` lists every file)")
    try:
        info = probe(args.input)
        n = max(1, min(args.num_frames, int((info.duration_s - args.start) * info.fps)))
        frames = read_span(args.input, info.start_time + args.start, n, info.fps)
    except MediaError as e:
        return fail(f"{args.input}: {e.reason}: {e.detail}")
    device = args.device
    if device == "auto" and any(METRICS[m].needs_weights for m in metrics):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not args.json:
        print(f"scoring {n} frames ({frames.shape[2]}x{frames.shape[1]}, {info.fps:.3g} fps) of {args.input}: "
              f"{', '.join(metrics)}", file=sys.stderr)
    opts = ScoreOptions(frames=args.frames or (prof.score.frames if prof else 4),
                        device="cpu" if device == "auto" else device,
                        dover_variant=args.dover_variant, dover_weights=args.dover_weights,
                        qalign_model=args.qalign_model, qalign_dtype=args.qalign_dtype)
    source = None
    if args.source_fps is not None and args.source_fps < info.fps * 0.999:
        from ..scoring import SourceFrames
        from ..split import source_frame_numbers

        source = SourceFrames.from_numbers(source_frame_numbers(n, args.start, info.fps, 0.0, args.source_fps),
                                           info.fps, args.source_fps)
    # one metric at a time, so the progress bar moves (model metrics can take minutes on a CPU)
    from tqdm import tqdm

    scores, scoring = {}, {"metrics": list(metrics), "frames": opts.frames}
    bar = tqdm(metrics, desc="score", unit="metric", file=sys.stderr, disable=args.quiet)
    for m in bar:
        bar.set_postfix_str(m)
        try:
            scorer = ClipScorer([m], opts)
        except (MissingWeights, ValueError, RuntimeError, OSError) as e:
            return fail(str(e).splitlines()[0] if str(e) else repr(e))
        scores.update(scorer.score(frames, info.fps, source))
        part = scorer.info()
        scoring.setdefault("models", {}).update(part.get("models", {}))
        if "dover_seed" in part:
            scoring["dover_seed"] = part["dover_seed"]
    if not scoring.get("models"):
        scoring.pop("models", None)
    if source is not None:
        scoring.update(source_frames=len(source.index), source_fps=args.source_fps)
    doc = {"input": args.input, "start": args.start, "frames": n, "fps": info.fps,
           "size": [int(frames.shape[2]), int(frames.shape[1])], "scores": scores, "scoring": scoring}
    if prof is not None:
        fails = prof.failures(scores)
        doc["filter"] = {"profile": prof.name, "passed": not fails,
                         "failed": [{"rule": r, "detail": d} for r, d in fails]}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for key, value in scores.items():
        print(f"{key:<16} {value:>10.4g}   {METRICS[SCORE_KEYS[key]].scores[key]}")
    if prof is not None:
        verdict = "passes" if not doc["filter"]["failed"] else "fails " + "; ".join(
            f"{f['rule']} ({f['detail']})" for f in doc["filter"]["failed"])
        print(f"profile {prof.name}: {verdict}")
    return 0

def _k_range(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError
    return int(parts[0]), int(parts[1])

def cmd_sdedit(args) -> int:
    from ..media import MediaError
    from ..sdedit import ModelError, SDEditParams
    from ..sdedit.memory import DoesNotFit
    from ..sdedit.single import sdedit_clip
    from ..sdedit.vae import VaeTiling

    try:
        k_range = _k_range(args.k_range) if args.k_range else None
    except ValueError:
        return fail(f"--k-range {args.k_range!r}: expected K1,K2 (integers)")
    base_w = base_h = None
    if args.base:
        try:
            base_w, base_h = (int(v) for v in args.base.lower().split("x"))
        except ValueError:
            return fail(f"--base {args.base!r}: expected WIDTHxHEIGHT, e.g. 832x480")
    tiling = None
    if args.vae_tiling:
        try:
            tile, stride = (int(v) for v in args.vae_tiling.split(","))
        except ValueError:
            return fail(f"--vae-tiling {args.vae_tiling!r}: expected TILE,STRIDE in pixels, e.g. 256,192")
        try:
            tiling = VaeTiling(tile, stride)
        except ValueError as e:
            return fail(f"--vae-tiling {args.vae_tiling!r}: {e}")
    if args.memory_budget_gb is not None and args.memory_budget_gb <= 0:
        return fail(f"--memory-budget-gb {args.memory_budget_gb:g}: must be positive")
    params = SDEditParams(steps=args.steps, preset=args.preset, k_range=k_range, k=args.k, guidance=args.guidance,
                          shift=args.shift, negative_prompt=args.negative_prompt,
                          base_area=None if args.base else args.base_area, base_width=base_w, base_height=base_h)
    try:
        from tqdm import tqdm

        bars = []                               # made at the first step: argument errors print alone
        loading = status("loading the model, decoding and encoding the clip", quiet=args.quiet).__enter__()

        def step() -> None:
            if not bars:
                loading.__exit__(None, None, None)
                bars.append(tqdm(desc="sdedit", unit="step", file=sys.stderr, disable=args.quiet))
            bars[0].update(1)

        try:
            data, doc = sdedit_clip(args.input, args.model, params, seed=args.seed, prompt=args.prompt,
                                    start=args.start, frames=args.frames, device=args.device, dtype=args.dtype,
                                    model_id=args.model_id, on_step=step, vae_tiling=tiling,
                                    memory_budget_gb=args.memory_budget_gb)
        finally:
            loading.__exit__(None, None, None)
            for b in bars:
                b.close()
    except (ValueError, ModelError) as e:
        return fail(str(e))
    except DoesNotFit as e:
        return fail(str(e), EXIT_FAILED)
    except MediaError as e:
        return fail(f"{args.input}: {e.reason}: {e.detail}")
    _write_outputs(args.out, data, args.json, doc)
    r = doc["sdedit"]
    print(f"{args.out}: {doc['frames']} frames at {r['base']['width']}x{r['base']['height']}, k={r['k']} of "
          f"N={r['steps']} (sigma_start {r['sigma_start']:.4f}), guidance {r['guidance']:g}, seed {r['seed']}, "
          f"model {r['model_id']}" + (" (tiny random model)" if doc.get("synthetic_models") else ""),
          file=sys.stderr if args.json == "-" else sys.stdout)
    return 0

def _write_outputs(out: str, data: bytes, json_to: str | None, doc: dict) -> None:
    """The clip to ``out``; its settings document to ``json_to`` ('-': stdout), if asked."""
    with open(out, "wb") as f:
        f.write(data)
    if json_to:
        text = json.dumps(doc, indent=2)
        if json_to == "-":
            print(text)
        else:
            with open(json_to, "w") as f:
                f.write(text + "\n")


def cmd_degrade(args) -> int:
    import yaml

    from ..degrade import PROFILES, params_from_dict, resolve_device
    from ..degrade.single import degrade_clip, summary
    from ..media import MediaError

    if args.profile not in PROFILES:
        return fail(f"--profile {args.profile!r}: unknown; allowed: {', '.join(PROFILES)}")
    overrides = None
    if args.overrides:
        try:
            overrides = yaml.safe_load(args.overrides)
        except yaml.YAMLError as e:
            return fail(f"--overrides: not YAML or JSON ({str(e).splitlines()[0]})")
        if not isinstance(overrides, dict):
            return fail("--overrides: expected a mapping, e.g. '{order1: {noise: {sigma: [1, 10]}}}'")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        return fail(f"-o {args.out}: folder {out_dir} does not exist")
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        return fail(f"--device: {e}")
    print(f"degrading {args.input} with profile {args.profile} (seed {args.seed}, x{args.scale}"
          f"{', on ' + device if device else ''})", file=sys.stderr)
    try:
        data, doc = degrade_clip(args.input, args.profile, seed=args.seed, scale=args.scale, overrides=overrides,
                                 start=args.start, frames=args.frames, device=device)
    except ValueError as e:
        return fail(str(e))
    except MediaError as e:
        return fail(f"{args.input}: {e.reason}: {e.detail}")
    _write_outputs(args.out, data, args.json, doc)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"{args.out}: {doc['frames']} frames {doc['hr'][0]}x{doc['hr'][1]} -> {doc['lr'][0]}x{doc['lr'][1]} "
          f"(lossless), profile {args.profile}, seed {args.seed}", file=out)
    print(summary(params_from_dict(args.profile, doc["params"])), file=out)
    return 0


def register(sub) -> None:
    """Add this module's verbs to the ``datakit`` parser."""
    rf = sub.add_parser("refs", help="ID reference crops of one frame (segment, filter, crop), for inspection",
                        description="Segment one frame of a video (or an image) as the id_refs stage does and "
                                    "write DIR/ref_00.png ... (background masked), frame.png, overlay.png "
                                    "(kept instances green, dropped red) and refs.json (boxes, areas, scores, "
                                    "segmenter). Exits 1 when no instance is usable. The opencv segmenter needs "
                                    "no weights; mask2former loads a checkpoint from disk only.")
    rf.add_argument("input", metavar="IN", help="video (or image) file")
    rf.add_argument("--frame", type=int, default=0, metavar="N", help="frame index in the video's own numbering "
                                                                      "(default 0)")
    rf.add_argument("-o", "--out", required=True, metavar="DIR", help="folder to write the crops into")
    rf.add_argument("--segmenter", choices=["opencv", "mask2former"], default="opencv",
                    help="opencv (HOG/Haar boxes + GrabCut, no weights; default) or mask2former")
    rf.add_argument("--model", metavar="DIR|ID",
                    help="Mask2Former checkpoint directory, or hub id found under $DATAKIT_MODELS or the HF cache "
                         "(default facebook/mask2former-swin-large-coco-panoptic)")
    rf.add_argument("--mode", choices=["panoptic", "instance"], default="panoptic",
                    help="Mask2Former post-processing (default panoptic)")
    rf.add_argument("--threshold", type=float, default=0.5, help="Mask2Former minimum segment score (default 0.5)")
    rf.add_argument("--device", default="auto", help="Mask2Former device: auto, cpu, cuda, cuda:N (default auto)")
    rf.add_argument("--classes", default="person", metavar="A,B",
                    help="classes to keep, comma-separated; 'animals' adds the animal classes (default person)")
    rf.add_argument("--min-area", type=float, default=0.01, metavar="F",
                    help="drop instances smaller than this fraction of the frame; the opencv segmenter looks for "
                         "people down to this size (default 0.01)")
    rf.add_argument("--max-ids", type=int, default=3, metavar="N", help="crops kept, largest first (default 3)")
    rf.add_argument("--margin", type=float, default=0.1, metavar="F",
                    help="box grown by this fraction of its size on each side (default 0.1)")
    rf.add_argument("--background", default="255,255,255", metavar="R,G,B",
                    help="colour of the masked-out background (default 255,255,255)")
    rf.set_defaults(func=cmd_refs)

    sc = sub.add_parser("score", help="quality scores of one clip (weight-free signals, MUSIQ, CLIP-IQA, DOVER, "
                                      "Q-Align)",
                        description="Decode a span of a video and print its quality scores, as the score stage "
                                    "computes them. Model metrics read their weights from disk only "
                                    "(`datakit models` shows where and how to get them).")
    sc.add_argument("input", help="video file or URI")
    sc.add_argument("--metrics", action="append", metavar="M[,M...]",
                    help="metrics to compute (repeatable; default: the profile's, else every weight-free one): "
                         "sharpness, exposure, black, frozen, motion, piqe, niqe, musiq, clipiqa, clipiqa_plus, dover, "
                         "qalign (video, 1 frame per second), qalign_image (sampled frames)")
    sc.add_argument("--profile", metavar="NAME|PATH", help="filter profile: its metrics, and its verdict on the clip")
    sc.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="span start (default 0)")
    sc.add_argument("--num-frames", type=int, default=77, metavar="N", help="frames to score (default 77)")
    sc.add_argument("--frames", type=int, metavar="N", help="frames sampled for per-frame metrics (default 4)")
    sc.add_argument("--device", default="auto", help="torch device for model metrics (default: cuda if present)")
    sc.add_argument("--dover-variant", default="dover", choices=["dover", "dover_plus_plus", "dover_mobile"])
    sc.add_argument("--dover-weights", metavar="FILE", help="DOVER weight file (default: the models directory)")
    sc.add_argument("--qalign-model", metavar="DIR|ID", default="q-future/one-align",
                    help="Q-Align model: one-align directory or hub id found on disk, or a transformers-native "
                         "VLM directory (default q-future/one-align)")
    sc.add_argument("--qalign-dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"],
                    help="Q-Align precision (default: float16 on GPU, float32 on CPU)")
    sc.add_argument("--source-fps", type=float, metavar="FPS",
                    help="the clip was resampled from a source at this lower rate: measure frozen frames and "
                         "motion on the source's own frames")
    sc.add_argument("--json", action="store_true", help="print JSON")
    sc.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sc.set_defaults(func=cmd_score)

    sd = sub.add_parser("sdedit", help="SDEdit one clip through a text-to-video base model (the LR x')",
                        description="Resize a clip to the base model's resolution, VAE-encode it, noise it to the "
                                    "start of step N-k of an N-step schedule, denoise exactly k steps with the "
                                    "caption and decode (UniMMVSR section 3.3): what the sdedit stage does to "
                                    "each clip. Weights are read from a local diffusers directory only.")
    sd.add_argument("input", help="video file or URI")
    sd.add_argument("-o", "--out", required=True, help="output video (lossless mp4 at the base resolution)")
    sd.add_argument("--model", required=True, metavar="DIR",
                    help="local diffusers directory (e.g. Wan2.1-T2V-1.3B-Diffusers, or `datakit models tiny`)")
    kk = sd.add_mutually_exclusive_group()
    kk.add_argument("--k", type=int, metavar="K", help="denoise exactly K steps")
    kk.add_argument("--k-range", metavar="K1,K2", help="k uniform in [K1, K2], drawn from --seed")
    kk.add_argument("--preset", choices=["light", "heavy"], default="light",
                    help="k range per 50 steps: light [3, 7], heavy [13, 17] (default light)")
    sd.add_argument("--steps", type=int, default=50, metavar="N", help="steps of the full schedule (default 50)")
    sd.add_argument("--seed", type=int, default=0, help="draws k and the noise (default 0)")
    sd.add_argument("--prompt", help="caption (default: the video's NAME.txt / NAME.json sidecar, else empty)")
    sd.add_argument("--negative-prompt", default="", help="prompt of the unconditional branch (default empty)")
    sd.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance (default 5.0)")
    sd.add_argument("--shift", type=float, help="scheduler shift (default: the model's; Wan 2.1: 3.0)")
    sd.add_argument("--base", metavar="WxH", help="base resolution (default: --base-area at the clip's aspect)")
    sd.add_argument("--base-area", type=int, default=832 * 480, metavar="PIXELS",
                    help="pixels of the base resolution (default 399360 = 832x480)")
    sd.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="span start (default 0)")
    sd.add_argument("--frames", type=int, default=77, metavar="N", help="frames (default 77, or fewer if shorter)")
    sd.add_argument("--device", default="auto", help="torch device (default: cuda if present)")
    sd.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                    help="denoiser dtype (default: bf16 on GPU, float32 on CPU)")
    sd.add_argument("--model-id", help="id recorded in the json (default: the directory name)")
    sd.add_argument("--vae-tiling", metavar="TILE,STRIDE",
                    help="VAE encode/decode over TILE-pixel tiles STRIDE pixels apart (e.g. 256,192), for base "
                         "sizes whose whole-frame VAE pass does not fit")
    sd.add_argument("--memory-budget-gb", type=float, metavar="GIB",
                    help="memory the call may use besides the model (default: what the device has free); a clip "
                         "that cannot fit is refused with what it needs")
    sd.add_argument("--json", metavar="PARAMS", help="write every setting (k, sigma_start, ...) as JSON here ('-': stdout)")
    sd.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sd.set_defaults(func=cmd_sdedit)

    dg = sub.add_parser("degrade", help="synthetic degradations of one clip (the LR the synthetic stage makes)",
                        description="Draw one clip's degradation parameters from a profile (blur kernels, resize, "
                                    "noise, JPEG, video codec; a per-frame random walk for the video profiles) and "
                                    "apply them: what the synthetic stage does to each clip. Writes the LR clip "
                                    "losslessly; same input and seed give the same LR.")
    dg.add_argument("input", help="video file or URI")
    dg.add_argument("-o", "--out", required=True, help="output video (lossless mp4 at the input size / scale)")
    dg.add_argument("--profile", default="realbasicvsr", metavar="P",
                    help="bicubic, realesrgan, realbasicvsr, light or heavy (default realbasicvsr)")
    dg.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    dg.add_argument("--scale", type=int, default=4, help="input size / LR size (default 4)")
    dg.add_argument("--overrides", metavar="YAML",
                    help="profile parameters to change, as in a pipeline's synthetic stage, "
                         "e.g. '{order1: {noise: {sigma: [1, 10]}}}'")
    dg.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="span start (default 0)")
    dg.add_argument("--frames", type=int, default=77, metavar="N", help="frames (default 77, or fewer if shorter)")
    dg.add_argument("--json", metavar="PARAMS", help="write every drawn parameter as JSON here ('-': stdout)")
    dg.add_argument("--device", default="cpu", metavar="D",
                    help="where the per-frame maths run: cpu (default; byte-reproducible) or a torch device "
                         "such as cuda (the same draws, torch's noise generator)")
    dg.set_defaults(func=cmd_degrade)
