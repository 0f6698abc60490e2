"""Verbs over whole corpora: run a job (or curate a clip index, then build from it), then verify, count and
look at its output."""
from __future__ import annotations

import json
import sys

from . import EXIT_FAILED, fail


def _load_spec(args):
    """(the spec with the command's overrides, None) or (None, exit code after a one-line error)."""
    from .. import spec as specmod

    overrides = list(args.set or [])
    if getattr(args, "input", None):
        overrides.append("input=" + json.dumps(args.input))
    if args.output:
        overrides.append("output=" + json.dumps(args.output))
    if args.address:
        overrides.append("ray.address=" + json.dumps(args.address))
    try:
        return specmod.load(args.pipeline, overrides), None
    except specmod.SpecError as e:
        return None, fail(str(e))


def cmd_run(args) -> int:
    from ..ingest import InputError
    from ..output.errors import OutputError
    from ..runner import PreflightError, run

    spec, code = _load_spec(args)
    if spec is None:
        return code
    args.on_interrupt = lambda: _kept(spec.output)
    try:
        res = run(spec, limit=args.limit, progress=not args.quiet, verbose=args.verbose)
    except (InputError, OutputError, PreflightError) as e:
        return fail(str(e))
    print(f"{spec.name}: wrote {counted(res.samples_written, 'sample')} in {counted(len(res.shards_written), 'shard')}, "
          f"{counted(res.rejects_written, 'reject')} ({res.skipped_sources} of {counted(res.sources, 'source')} "
          f"already complete) in {res.wall_s:.1f}s")
    _print_totals(res)
    return 0


def counted(n: int, noun: str) -> str:
    """``1 sample``, ``2 samples``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _print_totals(res) -> None:
    """The output's totals after a run or a build (this run's work and earlier runs')."""
    c = res.summary["counts"]
    print(f"{res.output}: {counted(c['samples'], 'sample')}, {counted(c['shards'], 'shard')}, "
          f"{counted(c['rejects'], 'reject')} in total")


def cmd_curate(args) -> int:
    from ..curation import CurationError, curate
    from ..ingest import InputError
    from ..output.errors import OutputError
    from ..runner import PreflightError

    spec, code = _load_spec(args)
    if spec is None:
        return code
    args.on_interrupt = lambda: "committed batches are kept; rerun the same command to resume"
    try:
        res = curate(spec, limit=args.limit, progress=not args.quiet, verbose=args.verbose)
    except (CurationError, InputError, OutputError, PreflightError) as e:
        return fail(str(e))
    c = res.summary["counts"]
    print(f"{spec.name}: indexed {counted(res.indexed, 'clip')}, {counted(res.rejects_written, 'reject')} "
          f"({res.skipped_sources} of {counted(res.sources, 'source')} already complete) in {res.wall_s:.1f}s")
    print(f"{res.output}: {counted(c.get('indexed', 0), 'clip')} in the index, {counted(c['rejects'], 'reject')} "
          "in total; "
          f"next: datakit inspect {res.output} --profile P --html DIR, then datakit build")
    return 0


def cmd_build(args) -> int:
    from ..curation import CurationError, build
    from ..output.errors import OutputError
    from ..runner import PreflightError
    from ..scoring.profiles import ProfileError

    spec, code = _load_spec(args)
    if spec is None:
        return code
    args.on_interrupt = lambda: _kept(spec.output)
    try:
        res = build(spec, args.index, args.profile, progress=not args.quiet, verbose=args.verbose)
    except (CurationError, OutputError, PreflightError, ProfileError) as e:
        return fail(str(e))
    print(f"{spec.name}: profile {res.summary['runs'][-1].get('profile')} keeps {counted(res.sources, 'indexed clip')}; "
          f"wrote {counted(res.samples_written, 'sample')} in {counted(len(res.shards_written), 'shard')}, "
          f"{counted(res.rejects_written, 'reject')} ({res.skipped_sources} already built) in {res.wall_s:.1f}s")
    _print_totals(res)
    return 0


def _kept(output: str) -> str:
    """What an interrupted run leaves: committed batches stay, a rerun resumes."""
    from ..output.reader import open_output

    try:
        out = open_output(output)
        n, batches = out.count_samples(), len(out.batches())
    except Exception:  # noqa: BLE001 - the message must not fail
        return "rerun the same command to resume"
    return f"{n} samples in {batches} committed batches are kept in {output}; rerun the same command to resume"


def _open(output: str):
    """(the output, None) or (None, exit code after a one-line error) — before any progress bar."""
    from ..output.errors import OutputError
    from ..output.reader import open_output

    try:
        return open_output(output), None
    except OutputError as e:
        return None, fail(str(e))


def cmd_verify(args) -> int:
    from ..output.errors import OutputError
    from ..verify import verify

    out, code = _open(args.output)
    if out is None:
        return code
    try:
        if args.quiet:
            rep = verify(out, decode=not args.no_decode)
        else:
            from tqdm import tqdm

            with tqdm(desc="verify", unit="batch", file=sys.stderr, total=len(out.batches())) as bar:
                rep = verify(out, decode=not args.no_decode, on_shard=lambda name: bar.update(1))
    except OutputError as e:
        return fail(str(e))
    for p in rep.problems:
        print(f"FAIL {p}")
    status = "OK" if rep.ok else f"{len(rep.problems)} problems"
    print(f"{status}: {rep.shards} batches, {rep.samples} samples, {rep.members} members checked")
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
        print("\nquantiles                verdict     count      min      p05      p50      p95      max")
        for name, by in s["quantiles"].items():
            label = name
            for verdict, q in by.items():
                if q:
                    print(f"  {label:<22} {verdict:<9} {q['count']:>6} "
                          + " ".join(f"{q[k]:>8.3g}" for k in ("min", "p05", "p50", "p95", "max")))
                    label = ""

def cmd_stats(args) -> int:
    from .. import summary
    from ..output.errors import OutputError

    out, code = _open(args.output)
    if out is None:
        return code
    try:
        s = summary.build(out)
    except OutputError as e:
        return fail(str(e))
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        _print_stats(s)
    return 0

def cmd_inspect(args) -> int:
    from ..output.errors import OutputError
    from ..report import ReportOptions, WhereError, build_site, compile_where

    out, code = _open(args.output)
    if out is None:
        return code
    if args.where:
        try:
            compile_where(args.where)
        except WhereError as e:
            return fail(str(e))
    if args.profile or out.kind == "curate":
        return _inspect_index(args, out.root)
    if not args.html:
        return fail(f"{out.root}: give --html DIR to write its report (or --profile P to see what a profile "
                    "keeps of its clip index)")
    opts = ReportOptions(samples=50 if args.samples is None else args.samples, task=args.task, where=args.where)
    try:
        if args.quiet:
            res = build_site(out.root, args.html, opts)
        else:
            from tqdm import tqdm

            with tqdm(desc="inspect", unit="sample", file=sys.stderr) as bar:
                res = build_site(out.root, args.html, opts, on_sample=lambda key: bar.update(1))
    except OutputError as e:
        return fail(str(e))
    print(f"wrote {counted(res['samples'], 'sample page')} and {counted(res['rejects'], 'reject')} to {res['dir']}/index.html")
    return 0


def _inspect_index(args, root: str) -> int:
    """``inspect INDEX [--profile P]``: what a profile keeps of a clip index, per rule (and the site)."""
    from ..curation import CurationError
    from ..output.errors import OutputError
    from ..report import ReportOptions, inspect_index
    from ..scoring.profiles import ProfileError

    opts = ReportOptions(task=args.task, where=args.where)
    cards = 6 if args.samples is None else args.samples
    try:
        rep = inspect_index(root, args.profile, args.html, opts, cards=cards)
    except (CurationError, OutputError, ProfileError) as e:
        return fail(str(e))
    print(f"profile {rep.profile} keeps {rep.kept} of {rep.clips} indexed clips in {rep.root}")
    print(f"\n  {'rule':<20} {'threshold':<26} {'failing':>8} {'alone':>6} {'kept so far':>12}")
    for r in rep.rules:
        print(f"  {r.name:<20} {r.threshold:<26} {r.failing:>8} {r.only:>6} {r.kept_so_far:>12}")
    if rep.dir:
        print(f"\nwrote the histograms, the rule table and {rep.cards} clip previews to {rep.dir}/index.html")
    return 0


def cmd_samples(args) -> int:
    from ..samples import write_samples

    try:
        paths = write_samples(args.dest)
    except FileNotFoundError as e:
        return fail(str(e))
    for p in paths:
        print(p)
    return 0


def register(sub) -> None:
    """Add this module's verbs to the ``datakit`` parser."""
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

    c = sub.add_parser("curate", help="score once: write a clip index (every scored clip, kept or not), no LR",
                       description="Run the stages a pipeline places before its filter (probe, caption, split, "
                                   "extract, score) and write a clip index: one typed Parquet row per scored clip "
                                   "with its span, sizes, caption, every score and the verdict of the spec's own "
                                   "profile (index/*.parquet). Nothing else is made. Rerunning resumes. Then "
                                   "`datakit inspect INDEX --profile P` and `datakit build`.")
    c.add_argument("pipeline", help="pipeline spec YAML")
    c.add_argument("--input", action="append", metavar="URI",
                   help="input folder, glob, list file or manifest (repeatable; replaces the spec's input)")
    c.add_argument("--output", metavar="URI", help="index root (replaces the spec's output)")
    c.add_argument("--address", metavar="auto|HOST:PORT", help="run on an existing Ray cluster")
    c.add_argument("--limit", type=int, metavar="N", help="process at most N input videos")
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a spec value (repeatable)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=cmd_curate)

    b = sub.add_parser("build", help="build samples from a clip index with a filter profile, without re-scoring",
                       description="Apply a filter profile to the scores stored in a clip index (from `curate`, "
                                   "or a `run` with a score stage) and run the stages after the filter (extract "
                                   "again, refs, SDEdit, synthetic) for the clips it keeps only. Building into an "
                                   "existing build with a looser profile adds the newly kept clips; a profile that "
                                   "would drop samples already there is refused (give a new --output).")
    b.add_argument("pipeline", help="pipeline spec YAML (the one the index was curated with)")
    b.add_argument("--index", required=True, metavar="URI", help="clip index root (`datakit curate` or run output)")
    b.add_argument("--profile", metavar="NAME", help="filter profile (filters/NAME.yaml or a path); "
                                                      "default: the spec's filter stage")
    b.add_argument("--output", required=True, metavar="URI", help="output root of the build")
    b.add_argument("--address", metavar="auto|HOST:PORT", help="run on an existing Ray cluster")
    b.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a spec value, e.g. filter.profile=paper (repeatable)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_build)

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

    i = sub.add_parser("inspect", help="write a static HTML report: clip table, HR | LR | references player, rejects; "
                                       "or what a filter profile keeps of a clip index",
                       description="Of an output: write a self-contained static site (open DIR/index.html from "
                                   "disk; no network): per-stage counters; histograms of every score over kept and "
                                   "rejected clips with the filter thresholds labelled; a table of the shown "
                                   "samples and all rejected clips to sort and filter by any score, stage, reason, "
                                   "task or source; one page per sample with a frame-stepping HR | LR | references "
                                   "player, an HR/LR comparison slider and the degradation parameters; a rejects "
                                   "gallery. Of a clip index (`datakit curate`, or a run with --profile), before "
                                   "any build: how many clips profile P keeps per rule (printed), and with --html "
                                   "the score histograms with P's thresholds, HR previews of kept and turned-down "
                                   "clips decoded from their source spans, and a table of the clips.")
    i.add_argument("output", help="output root or clip index root")
    i.add_argument("--html", metavar="DIR", help="folder to write the site into (needed for an output)")
    i.add_argument("--profile", metavar="NAME",
                   help="judge the clip index with this filter profile (filters/NAME.yaml or a path); "
                        "default for an index: the profile it was curated with")
    i.add_argument("--samples", type=int, default=None, metavar="N",
                   help="sample pages to write, in shard order (default 50); of an index: previews of N kept "
                        "and N turned-down clips (default 6); histograms count every clip")
    i.add_argument("--task", choices=["t2v", "mi2v", "edit"], help="only samples of this task")
    i.add_argument("--where", metavar="EXPR",
                   help='only samples matching, e.g. "scores.musiq > 40 and source.height >= 720"')
    i.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    i.set_defaults(func=cmd_inspect)

    sm = sub.add_parser("samples", help="copy the bundled real sample videos (with captions) into a folder")
    sm.add_argument("dest", nargs="?", default="data/samples", help="destination folder (default: data/samples)")
    sm.set_defaults(func=cmd_samples)
