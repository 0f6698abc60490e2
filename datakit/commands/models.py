"""Model weights: where each backend looks, what a pipeline needs, tiny random models."""
from __future__ import annotations

import json

from . import EXIT_FAILED, fail


def _pipeline_models(path: str) -> list[dict]:
    """Each model stage of a pipeline, the model it names and whether it can load (its preflight)."""
    from .. import spec as specmod
    from ..stages import STAGES

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
    from ..scoring.weights import describe, models_dir, torch_hub_dir

    if args.pipeline:
        from ..spec import SpecError

        try:
            rows = _pipeline_models(args.pipeline)
        except SpecError as e:
            return fail(str(e))
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
    from .. import tiny

    names = [n.strip() for n in (args.only or "").split(",") if n.strip()] or list(tiny.WRITERS)
    unknown = [n for n in names if n not in tiny.WRITERS]
    if unknown:
        return fail(f"--only {','.join(unknown)}: no such tiny model; known: {', '.join(tiny.WRITERS)}")
    for name in names:
        path = tiny.write(args.dir, [name], seed=args.seed)[name]
        print(f"{name:<12} {path}")
    print(f"wrote {len(names)} tiny random models (outputs made with them are marked synthetic_models)")
    return 0


def register(sub) -> None:
    """Add this module's verbs to the ``datakit`` parser."""
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
