"""The ``datakit`` command line: one verb per job."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"datakit: error: {msg}", file=sys.stderr)
    return code


def cmd_run(args) -> int:
    from . import spec as specmod
    from .ingest import InputError
    from .runner import PreflightError, run
    from .shards import OutputError

    overrides = list(args.set or [])
    if args.input:
        overrides.append("input=" + json.dumps(args.input))
    if args.output:
        overrides.append("output=" + json.dumps(args.output))
    if args.address:
        overrides.append("ray.address=" + json.dumps(args.address))
    try:
        spec = specmod.load(args.pipeline, overrides)
    except specmod.SpecError as e:
        return _fail(str(e))
    try:
        res = run(spec, limit=args.limit, progress=not args.quiet)
    except (InputError, OutputError, PreflightError) as e:
        return _fail(str(e))
    c = res.summary["counts"]
    print(f"{spec.name}: wrote {res.samples_written} samples in {len(res.shards_written)} shards, "
          f"{res.rejects_written} rejects ({res.skipped_sources} of {res.sources} sources already complete) "
          f"in {res.wall_s:.1f}s")
    print(f"{res.output}: {c['samples']} samples, {c['shards']} shards, {c['rejects']} rejects in total")
    return 0


def cmd_verify(args) -> int:
    from .verify import verify

    if args.quiet:
        rep = verify(args.output, decode=not args.no_decode)
    else:
        from tqdm import tqdm

        bar = tqdm(desc="verify", unit="shard", file=sys.stderr)
        rep = verify(args.output, decode=not args.no_decode, on_shard=lambda name: bar.update(1))
        bar.close()
    for p in rep.problems:
        print(f"FAIL {p}")
    status = "OK" if rep.ok else f"{len(rep.problems)} problems"
    print(f"{status}: {rep.shards} shards, {rep.samples} samples, {rep.members} members checked")
    return 0 if rep.ok else EXIT_FAILED


def _print_stats(s: dict) -> None:
    c = s["counts"]
    print(f"pipeline {s.get('pipeline')} (task {s.get('task')}, config {s.get('config_hash')})")
    print(f"  sources {c['sources']}  clips {c['clips']}  samples {c['samples']}  shards {c['shards']}  "
          f"rejects {c['rejects']}")
    if s["stages"]:
        print("\nstage          in    rejected     out")
        for name, st in s["stages"].items():
            print(f"  {name:<10} {st['in']:>6} {st['rejected']:>10} {st['out']:>7}   ({st['unit']})")
    if s["rejects_by_reason"]:
        print("\nrejects by reason")
        for reason, n in s["rejects_by_reason"].items():
            print(f"  {reason:<24} {n:>6}")
    if s["timings_s"]:
        print("\nseconds per sample, by stage")
        for name, t in s["timings_s"].items():
            print(f"  {name:<10} {t['mean_per_sample']:>8.3f}   (total {t['total']:.1f})")
    if s["quantiles"]:
        print("\nquantiles               min      p05      p50      p95      max")
        for name, q in s["quantiles"].items():
            if q:
                print(f"  {name:<20} " + " ".join(f"{q[k]:>8.3g}" for k in ("min", "p05", "p50", "p95", "max")))


def cmd_stats(args) -> int:
    from . import fsio, summary

    if not fsio.is_dir(args.output):
        return _fail(f"{args.output} is not a datakit output directory")
    s = summary.build(args.output)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        _print_stats(s)
    return 0


def cmd_inspect(args) -> int:
    from . import fsio
    from .report import ReportOptions, WhereError, build_site, compile_where

    if not fsio.is_dir(args.output):
        return _fail(f"{args.output} is not a datakit output directory")
    if args.where:
        try:
            compile_where(args.where)
        except WhereError as e:
            return _fail(str(e))
    opts = ReportOptions(samples=args.samples, task=args.task, where=args.where)
    if args.quiet:
        res = build_site(args.output, args.html, opts)
    else:
        from tqdm import tqdm

        bar = tqdm(desc="inspect", unit="sample", file=sys.stderr)
        res = build_site(args.output, args.html, opts, on_sample=lambda key: bar.update(1))
        bar.close()
    print(f"wrote {res['samples']} sample pages and {res['rejects']} rejects to {res['dir']}/index.html")
    return 0


def cmd_refs(args) -> int:
    from pydantic import ValidationError

    from .media import MediaError
    from .refs.idrefs import IdRules
    from .refs.mask2former import ModelNotFound
    from .refs.segment import Mask2FormerConfig, OpenCVConfig, make_segmenter
    from .refs.single import frame_refs, read_frame

    if not 0 <= args.min_area <= 1 or args.max_ids < 1 or args.margin < 0:
        return _fail("--min-area must be within 0..1, --max-ids at least 1 and --margin not negative")
    try:
        frame, where = read_frame(args.input, args.frame)
    except ValueError as e:
        return _fail(str(e))
    except MediaError as e:
        return _fail(f"{args.input}: {e}")
    try:
        background = tuple(int(v) for v in args.background.split(","))
        if len(background) != 3 or not all(0 <= v <= 255 for v in background):
            raise ValueError
    except ValueError:
        return _fail(f"--background {args.background!r}: expected R,G,B with values 0..255")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    try:
        if args.segmenter == "opencv":
            cfg = OpenCVConfig(classes=classes)
        else:
            cfg = Mask2FormerConfig(classes=classes, mode=args.mode, threshold=args.threshold, device=args.device,
                                    **({"model": args.model} if args.model else {}))
        rules = IdRules(min_area=args.min_area, max_ids=args.max_ids, margin=args.margin, background=background)
        segmenter = make_segmenter(cfg)
    except ValidationError as e:
        err = e.errors()[0]
        return _fail(f"--{err['loc'][0] if err['loc'] else 'segmenter'}: {err['msg']}")
    except (ModelNotFound, ValueError) as e:
        return _fail(str(e))
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
    from .scoring import WEIGHT_FREE, check_metrics

    metrics = [m.strip() for arg in (args.metrics or []) for m in arg.split(",") if m.strip()]
    prof = None
    if args.profile:
        from .scoring import profiles

        prof = profiles.load(args.profile)
        metrics = metrics or list(prof.score.metrics)
    return check_metrics(metrics or WEIGHT_FREE), prof


def cmd_score(args) -> int:
    from .media import MediaError, probe, read_span
    from .scoring import METRICS, SCORE_KEYS, ClipScorer, ScoreOptions
    from .scoring.profiles import ProfileError
    from .scoring.weights import MissingWeights, missing

    try:
        metrics, prof = _score_metrics(args)
    except (ValueError, ProfileError) as e:
        return _fail(str(e))
    if args.num_frames < 1 or (args.frames is not None and args.frames < 1) or args.start < 0:
        return _fail("--num-frames and --frames must be at least 1, --start not negative")
    problems = missing(metrics, args.dover_variant, args.dover_weights)
    if problems:
        return _fail("; ".join(problems) + " (nothing is downloaded; `datakit models` lists every file)")
    try:
        info = probe(args.input)
        n = max(1, min(args.num_frames, int((info.duration_s - args.start) * info.fps)))
        frames = read_span(args.input, info.start_time + args.start, n, info.fps)
    except MediaError as e:
        return _fail(f"{args.input}: {e.reason}: {e.detail}")
    device = args.device
    if device == "auto" and any(METRICS[m].needs_weights for m in metrics):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not args.json:
        print(f"scoring {n} frames ({frames.shape[2]}x{frames.shape[1]}, {info.fps:.3g} fps) of {args.input}: "
              f"{', '.join(metrics)}", file=sys.stderr)
    try:
        scorer = ClipScorer(metrics, ScoreOptions(
            frames=args.frames or (prof.score.frames if prof else 4), device="cpu" if device == "auto" else device,
            dover_variant=args.dover_variant, dover_weights=args.dover_weights))
    except (MissingWeights, ValueError, RuntimeError) as e:
        return _fail(str(e))
    scores = scorer.score(frames)
    doc = {"input": args.input, "start": args.start, "frames": n, "fps": info.fps,
           "size": [int(frames.shape[2]), int(frames.shape[1])], "scores": scores, "scoring": scorer.info()}
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


def _pipeline_models(path: str) -> list[dict]:
    """Each model stage of a pipeline, the model it names and whether it can load (its preflight)."""
    from . import spec as specmod
    from .stages import STAGES

    spec = specmod.load(path)
    rows = []
    for cfg in spec.stages:
        cls = STAGES[cfg.stage]
        if not cls.uses_model:
            continue
        d = cfg.model_dump(mode="json")
        seg = d.get("segmenter") or {}
        named = (d.get("model") or seg.get("model") or (f"{seg['backend']} (no weights)" if seg else "")
                 or ", ".join(d.get("metrics") or []))
        problems = cls.preflight(cfg)
        rows.append({"stage": cfg.stage, "model": named, "ok": not problems, "problems": problems})
    return rows


def cmd_models(args) -> int:
    from .scoring.weights import describe, models_dir, torch_hub_dir

    if args.pipeline:
        from .spec import SpecError

        try:
            rows = _pipeline_models(args.pipeline)
        except SpecError as e:
            return _fail(str(e))
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"model stages of {args.pipeline}:")
            for r in rows:
                print(f"  {r['stage']:<12} {r['model'] or '-'}\n  {'':<12} "
                      + ("found" if r["ok"] else "MISSING: " + "; ".join(r["problems"])))
        return 0 if all(r["ok"] for r in rows) else EXIT_FAILED
    rows = describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"models directory {models_dir()} ($DATAKIT_MODELS); torch hub {torch_hub_dir()} ($TORCH_HOME/hub)")
    for r in rows:
        status = f"found {r['found']}" if r["found"] else "MISSING, looked in " + ", ".join(r["looked_in"])
        print(f"  {r['metric']:<24} {r['backend']:<8} {r['file']}\n  {'':<24} {status}")
    return 0


def cmd_models_tiny(args) -> int:
    from . import tiny

    names = [n.strip() for n in (args.only or "").split(",") if n.strip()] or list(tiny.WRITERS)
    unknown = [n for n in names if n not in tiny.WRITERS]
    if unknown:
        return _fail(f"--only {','.join(unknown)}: no such tiny model; known: {', '.join(tiny.WRITERS)}")
    for name in names:
        path = tiny.write(args.dir, [name], seed=args.seed)[name]
        print(f"{name:<12} {path}")
    print(f"wrote {len(names)} tiny random models (outputs made with them are marked synthetic_models)")
    return 0


def _k_range(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError
    return int(parts[0]), int(parts[1])


def cmd_sdedit(args) -> int:
    from .media import MediaError
    from .sdedit import ModelError, SDEditParams
    from .sdedit.single import sdedit_clip

    try:
        k_range = _k_range(args.k_range) if args.k_range else None
    except ValueError:
        return _fail(f"--k-range {args.k_range!r}: expected K1,K2 (integers)")
    base_w = base_h = None
    if args.base:
        try:
            base_w, base_h = (int(v) for v in args.base.lower().split("x"))
        except ValueError:
            return _fail(f"--base {args.base!r}: expected WIDTHxHEIGHT, e.g. 832x480")
    params = SDEditParams(steps=args.steps, preset=args.preset, k_range=k_range, k=args.k, guidance=args.guidance,
                          shift=args.shift, negative_prompt=args.negative_prompt,
                          base_area=None if args.base else args.base_area, base_width=base_w, base_height=base_h)
    try:
        data, doc = sdedit_clip(args.input, args.model, params, seed=args.seed, prompt=args.prompt,
                                start=args.start, frames=args.frames, device=args.device, dtype=args.dtype,
                                model_id=args.model_id)
    except (ValueError, ModelError) as e:
        return _fail(str(e))
    except MediaError as e:
        return _fail(f"{args.input}: {e.reason}: {e.detail}")
    with open(args.out, "wb") as f:
        f.write(data)
    if args.json:
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    r = doc["sdedit"]
    print(f"{args.out}: {doc['frames']} frames at {r['base']['width']}x{r['base']['height']}, k={r['k']} of "
          f"N={r['steps']} (sigma_start {r['sigma_start']:.4f}), guidance {r['guidance']:g}, seed {r['seed']}, "
          f"model {r['model_id']}" + (" (tiny random model)" if doc.get("synthetic_models") else ""),
          file=sys.stderr if args.json == "-" else sys.stdout)
    return 0


def cmd_refilter(args) -> int:
    from . import fsio
    from .scoring import profiles

    if not fsio.is_dir(args.output):
        return _fail(f"{args.output} is not a datakit output directory")
    try:
        prof = profiles.load(args.profile)
    except profiles.ProfileError as e:
        return _fail(str(e))
    res = profiles.refilter(args.output, prof, args.keep_list)
    if args.json:
        print(json.dumps(res.__dict__, indent=2))
        return 0
    print(f"profile {res.profile}: keeps {res.kept} of {res.samples} samples; keep-list {res.keep_list}")
    for reason, n in res.by_reason.items():
        print(f"  {reason:<24} {n:>6}")
    if res.rescued:
        print(f"  ({res.rescued} clips an earlier filter rejected would pass, but their media were not stored)")
    return 0


def cmd_degrade(args) -> int:
    import yaml

    from .degrade import PROFILES, params_from_dict
    from .degrade.single import degrade_clip, summary
    from .media import MediaError

    if args.profile not in PROFILES:
        return _fail(f"--profile {args.profile!r}: unknown; allowed: {', '.join(PROFILES)}")
    overrides = None
    if args.overrides:
        try:
            overrides = yaml.safe_load(args.overrides)
        except yaml.YAMLError as e:
            return _fail(f"--overrides: not YAML or JSON ({str(e).splitlines()[0]})")
        if not isinstance(overrides, dict):
            return _fail("--overrides: expected a mapping, e.g. '{order1: {noise: {sigma: [1, 10]}}}'")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        return _fail(f"-o {args.out}: folder {out_dir} does not exist")
    print(f"degrading {args.input} with profile {args.profile} (seed {args.seed}, x{args.scale})", file=sys.stderr)
    try:
        data, doc = degrade_clip(args.input, args.profile, seed=args.seed, scale=args.scale, overrides=overrides,
                                 start=args.start, frames=args.frames)
    except ValueError as e:
        return _fail(str(e))
    except MediaError as e:
        return _fail(f"{args.input}: {e.reason}: {e.detail}")
    with open(args.out, "wb") as f:
        f.write(data)
    if args.json:
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"{args.out}: {doc['frames']} frames {doc['hr'][0]}x{doc['hr'][1]} -> {doc['lr'][0]}x{doc['lr'][1]} "
          f"(lossless), profile {args.profile}, seed {args.seed}", file=out)
    print(summary(params_from_dict(args.profile, doc["params"])), file=out)
    return 0


def cmd_samples(args) -> int:
    from .samples import write_samples

    try:
        paths = write_samples(args.dest)
    except FileNotFoundError as e:
        return _fail(str(e))
    for p in paths:
        print(p)
    return 0


def cmd_train(args) -> int:
    from .train import config as tconfig

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
        return _fail(str(e))
    if not os.path.isdir(cfg.base_model):
        return _fail(f"base_model {cfg.base_model}: not a directory (a diffusers Wan 2.1 T2V folder; "
                     "`datakit models tiny DIR` writes a tiny one)")
    from .sdedit import ModelError
    from .train.checkpoint import CheckpointError
    from .train.data import DataError
    from .train.trainer import train

    try:
        res = train(cfg)
    except (DataError, CheckpointError, ModelError) as e:
        return _fail(str(e))
    loss = res.get("last_loss")
    print(f"{cfg.name}: trained to step {res.get('end_step')} of {cfg.total_steps} on {res['workers']} worker(s) "
          f"in {res['wall_s']:.1f}s" + (f", last loss {loss:.4f}" if loss is not None else ""))
    print(f"checkpoint: {res.get('checkpoint')}")
    return 0


def cmd_upscale(args) -> int:
    from . import fsio

    for label, uri in [("--lr", args.lr), ("--ref-video", args.ref_video), *[("--ref", r) for r in args.ref or []]]:
        if uri and not fsio.exists(uri):
            return _fail(f"{label} {uri}: not found")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not fsio.is_remote(args.out) and not os.path.isdir(out_dir):
        return _fail(f"-o {args.out}: folder {out_dir} does not exist")
    from .media import MediaError
    from .sdedit import ModelError
    from .train.checkpoint import CheckpointError
    from .train.infer import upscale

    bar = None

    def progress(n, total):
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(desc="upscale", unit="step", total=total, file=sys.stderr)
        bar.update(1)

    try:
        res = upscale(args.checkpoint, args.lr, args.prompt, args.out, ref_images=args.ref or [],
                      ref_video=args.ref_video, steps=args.steps, s_txt=args.s_txt, s_ref=args.s_ref,
                      n_ref=args.n_ref, shift=args.shift, noise_aug=args.noise_aug, scale=args.scale,
                      seed=args.seed, device=args.device, base_model=args.base_model,
                      progress=None if args.quiet else progress)
    except (CheckpointError, ModelError, ValueError) as e:
        return _fail(str(e))
    except MediaError as e:
        return _fail(f"{e.reason}: {e.detail}")
    finally:
        if bar is not None:
            bar.close()
    refs = ", ".join(res["references"]) or "none"
    print(f"{res['output']}: {res['width']}x{res['height']}, {res['frames']} frames; {res['steps']} steps, "
          f"s_txt {res['s_txt']:g}, s_ref {res['s_ref']:g} for {res['ref_guided_steps']} steps, "
          f"noise-aug t {res['noise_aug']}, references: {refs}; checkpoint {res['checkpoint']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="datakit",
        description="Build UniMMVSR training corpora (LR-HR-reference triples as WebDataset shards) with Ray.")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    r = sub.add_parser("run", help="run a pipeline spec (pipelines/*.yaml) as a Ray job",
                       description="Run a pipeline: list inputs, run the stages the spec declares on Ray Data, "
                                   "write shards, manifests, rejects and summary.json. Rerunning the same "
                                   "command resumes: complete shards are kept and no sample is written twice.")
    r.add_argument("pipeline", help="pipeline spec YAML")
    r.add_argument("--input", action="append", metavar="URI",
                   help="input folder, glob, list file or manifest (repeatable; replaces the spec's input)")
    r.add_argument("--output", metavar="URI", help="output root (replaces the spec's output)")
    r.add_argument("--address", metavar="auto|HOST:PORT", help="run on an existing Ray cluster")
    r.add_argument("--limit", type=int, metavar="N", help="process at most N input videos")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a spec value, e.g. split.frames=21 or shard.max_samples=8 (repeatable)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("verify", help="check every shard, member, checksum and count of an output",
                       description="Exit 0 if every complete shard is readable, every member decodes and "
                                   "matches its manifest's size and sha256, no key repeats, and summary.json "
                                   "agrees; else list each problem and exit 1.")
    v.add_argument("output", help="output root")
    v.add_argument("--no-decode", action="store_true", help="check sizes and checksums only (faster)")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_verify)

    s = sub.add_parser("stats", help="counts, rejects by reason, timings and quantiles of an output")
    s.add_argument("output", help="output root")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_stats)

    i = sub.add_parser("inspect", help="write a static HTML report: HR | LR | references, scores, rejects",
                       description="Write a self-contained static site (open DIR/index.html, or serve DIR): "
                                   "per-stage counters, rejects by reason with a gallery, histograms of every "
                                   "score with the filter thresholds, and one page per sample.")
    i.add_argument("output", help="output root")
    i.add_argument("--html", required=True, metavar="DIR", help="folder to write the site into")
    i.add_argument("--samples", type=int, default=50, metavar="N", help="sample pages to write (default 50)")
    i.add_argument("--task", choices=["t2v", "mi2v", "edit"], help="only samples of this task")
    i.add_argument("--where", metavar="EXPR",
                   help='only samples matching, e.g. "scores.musiq > 40 and source.height >= 720"')
    i.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    i.set_defaults(func=cmd_inspect)

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
                    help="drop instances smaller than this fraction of the frame (default 0.01)")
    rf.add_argument("--max-ids", type=int, default=3, metavar="N", help="crops kept, largest first (default 3)")
    rf.add_argument("--margin", type=float, default=0.1, metavar="F",
                    help="box grown by this fraction of its size on each side (default 0.1)")
    rf.add_argument("--background", default="255,255,255", metavar="R,G,B",
                    help="colour of the masked-out background (default 255,255,255)")
    rf.set_defaults(func=cmd_refs)

    sc = sub.add_parser("score", help="quality scores of one clip (weight-free signals, MUSIQ, CLIP-IQA, DOVER)",
                        description="Decode a span of a video and print its quality scores, as the score stage "
                                    "computes them. Model metrics read their weights from disk only "
                                    "(`datakit models` shows where).")
    sc.add_argument("input", help="video file or URI")
    sc.add_argument("--metrics", action="append", metavar="M[,M...]",
                    help="metrics to compute (repeatable; default: the profile's, else every weight-free one): "
                         "sharpness, exposure, black, frozen, motion, piqe, niqe, musiq, clipiqa, clipiqa_plus, dover")
    sc.add_argument("--profile", metavar="NAME|PATH", help="filter profile: its metrics, and its verdict on the clip")
    sc.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="span start (default 0)")
    sc.add_argument("--num-frames", type=int, default=77, metavar="N", help="frames to score (default 77)")
    sc.add_argument("--frames", type=int, metavar="N", help="frames sampled for per-frame metrics (default 4)")
    sc.add_argument("--device", default="auto", help="torch device for model metrics (default: cuda if present)")
    sc.add_argument("--dover-variant", default="dover", choices=["dover", "dover_plus_plus", "dover_mobile"])
    sc.add_argument("--dover-weights", metavar="FILE", help="DOVER weight file (default: the models directory)")
    sc.add_argument("--json", action="store_true", help="print JSON")
    sc.set_defaults(func=cmd_score)

    mo = sub.add_parser("models", help="each model backend: where its weights are looked for, found or not",
                        description="List the weight files of every model scorer (pyiqa MUSIQ / CLIP-IQA under "
                                    "$TORCH_HOME/hub, DOVER under $DATAKIT_MODELS/dover) and whether they are "
                                    "on disk; with --pipeline, check what each model stage of a pipeline names "
                                    "(Mask2Former, Wan, captioner, scorers). Nothing is downloaded.")
    mo.add_argument("--json", action="store_true", help="print JSON")
    mo.add_argument("--pipeline", metavar="SPEC", help="check the models every model stage of SPEC names "
                    "(Mask2Former, Wan, captioner, scorers); exit 1 if any is missing")
    mo.set_defaults(func=cmd_models)
    mo.usage = "datakit models [-h] [--json] [--pipeline SPEC]\n       datakit models tiny [-h] [--only NAME[,NAME...]] [--seed SEED] DIR"
    mo_sub = mo.add_subparsers(dest="models_action", metavar="ACTION")
    mt = mo_sub.add_parser("tiny", help="write tiny randomly initialised models for smoke runs and tests",
                           description="Write tiny, randomly initialised models built with the real classes "
                                       "(Wan 2.1 pipeline, LLaVA captioner, and every other registered backend) "
                                       "into DIR/<name>, each loadable by datakit's normal loaders. Outputs made "
                                       "with them are marked \"synthetic_models\": true. pipelines/smoke.yaml "
                                       "expects them in data/tiny-models.")
    mt.add_argument("dir", help="destination folder (e.g. data/tiny-models)")
    mt.add_argument("--only", metavar="NAME[,NAME...]", help="write only these models (default: all)")
    mt.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    mt.set_defaults(func=cmd_models_tiny)

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
    sd.add_argument("--json", metavar="PARAMS", help="write every setting (k, sigma_start, ...) as JSON here ('-': stdout)")
    sd.set_defaults(func=cmd_sdedit)

    rfl = sub.add_parser("refilter", help="apply another filter profile to a finished output, without re-scoring",
                         description="Re-apply a filter profile to the scores stored in an output's manifests and "
                                     "write a keep-list (Parquet: key, shard, kept, reason, failed). Nothing is "
                                     "scored or rewritten; clips an earlier filter stage rejected cannot come back.")
    rfl.add_argument("output", help="output root")
    rfl.add_argument("profile", help="profile name (filters/NAME.yaml) or path")
    rfl.add_argument("--keep-list", metavar="URI", help="where to write it (default OUTPUT/keep/PROFILE.parquet)")
    rfl.add_argument("--json", action="store_true", help="print JSON")
    rfl.set_defaults(func=cmd_refilter)

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
    dg.set_defaults(func=cmd_degrade)

    sm = sub.add_parser("samples", help="copy the bundled real sample videos (with captions) into a folder")
    sm.add_argument("dest", nargs="?", default="data/samples", help="destination folder (default: data/samples)")
    sm.set_defaults(func=cmd_samples)

    tr = sub.add_parser("train", help="train the UniMMVSR model on datakit shards (pipelines/train_*.yaml)",
                        description="Train the bundled UniMMVSR model from a training config: a Wan 2.1 T2V base "
                                    "model, dataset roots written by `datakit run`, and stages (steps, frames, task "
                                    "mixture). One worker trains in this process; distributed.workers > 1 runs Ray "
                                    "Train (DDP). Writes OUTPUT/checkpoints/step-N/ (safetensors weights and "
                                    "optimizer state, trainer.json) and OUTPUT/metrics.jsonl; rerunning the same "
                                    "command resumes from the latest checkpoint.")
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

    up = sub.add_parser("upscale", help="upscale a video with a trained checkpoint (text, ID images, reference video)",
                        description="Super-resolve LR.mp4 by --scale with a checkpoint of `datakit train`, guided by "
                                    "the prompt and optional ID images and reference video: independent "
                                    "text/reference classifier-free guidance, reference guidance for the first "
                                    "--n-ref steps only, the LR noise-augmented to --noise-aug. Defaults come from "
                                    "the checkpoint (paper: 50 steps, shift 1.0, s_txt 3, s_ref 1, n_ref 15, "
                                    "noise-aug 600 with references, 200 without). Writes an H.264 MP4 with the "
                                    "LR's frame count and rate.")
    up.add_argument("--checkpoint", required=True, metavar="DIR",
                    help="a checkpoint folder, or a training output (its latest checkpoint)")
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
    up.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    up.add_argument("--base-model", metavar="DIR", help="Wan base model folder, if not where the checkpoint says")
    up.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    up.set_defaults(func=cmd_upscale)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    logging.basicConfig(level=level,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
