"""``datakit reproduce``: re-make one sample from its json and say whether each member matches."""
from __future__ import annotations

import json

from . import EXIT_FAILED, fail, status


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def _print(rep, strict: bool) -> None:
    print(f"{rep.key} (pipeline {rep.pipeline}, config {rep.config_hash}): rebuilt by {', '.join(rep.stages) or '-'}")
    for m in rep.members:
        diff = f"  max {m.max_abs:g} mean {m.mean_abs:g} levels" if m.max_abs is not None else ""
        sha = f"{_short(m.recorded)} -> {_short(m.rebuilt)}" if m.rebuilt else _short(m.recorded)
        print(f"  {m.status:<11} {m.name:<10} {sha}{diff}" + (f"  ({m.note})" if m.note else ""))
    for f in rep.fields:
        if f.status != "match":
            print(f"  {f.status:<11} json {f.name}: {f.note}")
    same = [f.name for f in rep.fields if f.status == "match"]
    if same:
        print(f"  match       json {', '.join(same)}")
    for n in rep.notes:
        print(f"  note        {n}")
    rebuilt = [m for m in rep.members if m.rebuilt]
    exact = sum(m.status == "match" for m in rebuilt)
    verdict = "OK" if rep.ok(strict) else "FAIL"
    print(f"{verdict}: {exact} of {len(rebuilt)} rebuilt members match bit for bit"
          + (f", {sum(m.status == 'differs' for m in rebuilt)} differ where exactness is not promised"
             if any(m.status == "differs" for m in rebuilt) else ""))


def cmd_reproduce(args) -> int:
    from .. import fsio
    from ..reproduce import ReproduceError, find_sample, load_sample, reproduce

    try:
        if fsio.is_dir(args.target) and not args.target.endswith(".tar"):
            if not args.key:
                return fail(f"{args.target} is an output root: give the sample's KEY after it")
            if args.members or args.config:
                return fail("--members and --config are for a sample json; an output root has both")
            sample = find_sample(args.target, args.key)
        else:
            sample = load_sample(args.target, args.key, args.members, args.config)
        with status(f"rebuilding {sample.doc.get('key')}", quiet=args.json):
            rep = reproduce(sample.doc, sample.config, sample.members, sample.recorded_sha,
                            device=args.device, source=args.source, unreadable=sample.unreadable)
    except ReproduceError as e:
        return fail(str(e))
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
    else:
        _print(rep, args.strict)
    return 0 if rep.ok(args.strict) else EXIT_FAILED


def register(sub) -> None:
    """Add this module's verbs to the ``datakit`` parser."""
    r = sub.add_parser(
        "reproduce", help="re-make a sample from its json and check each member's sha256",
        description="Re-read a sample's source span and re-run the pipeline's member-making stages (extract, "
                    "id_refs, edit_refs, sdedit, synthetic) with the parameters and seeds its json records; "
                    "compare each rebuilt member's sha256 with the recorded one and the json fields with the "
                    "recorded ones. Exit 0 when everything matches bit for bit (SDEdit on a GPU, or "
                    "degradations made on a torch device, may differ: their difference is reported), 1 when "
                    "something does not, 2 on bad input.")
    r.add_argument("target", help="output root (then KEY), a shard .tar (then KEY), or a sample json")
    r.add_argument("key", nargs="?", help="the sample's key (clip id)")
    r.add_argument("--members", metavar="DIR|TAR",
                   help="with a sample json: its members (a folder of KEY.NAME files or a tar; default: the json's folder)")
    r.add_argument("--config", metavar="FILE",
                   help="with a sample json or tar: the output's config.json or the pipeline YAML "
                        "(default: meta/config.json of the output root above it)")
    r.add_argument("--source", metavar="URI", help="the source video, if it moved since the run")
    r.add_argument("--device", metavar="DEV", help="where SDEdit and the degradations' per-frame maths run "
                                                   "(cpu, cuda, cuda:1; default: as the config says)")
    r.add_argument("--strict", action="store_true", help="fail on any difference, even where exactness is not promised")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.set_defaults(func=cmd_reproduce)
