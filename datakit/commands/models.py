"""Model weights: where each backend looks, where to get them, what a pipeline needs, tiny random models."""
from __future__ import annotations

import json
from pathlib import Path

from . import EXIT_FAILED, fail

# The model directories pipelines name (pipelines/*.yaml) that no lookup in datakit.scoring.weights covers:
# (backend, used by, hub id, directory, how pipelines name it, files, licence)
DIRECTORIES = [
    ("Wan 2.1 (SDEdit)", "sdedit stage, datakit sdedit, trainer base model", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
     "models/Wan2.1-T2V-1.3B-Diffusers", "pipelines/t2v, mi2v and edit.yaml name it as sdedit.model",
     "a diffusers directory: model_index.json, scheduler/, text_encoder/ (UMT5), tokenizer/, transformer/, vae/ "
     "(Wan-AI/Wan2.1-T2V-14B-Diffusers has the same layout)", "Apache-2.0"),
    ("LLaVA 1.5 (captioner)", "captioner stage (model: DIR)", "llava-hf/llava-1.5-7b-hf",
     "models/llava-1.5-7b-hf", "a captioner stage names it as model (this directory is a suggestion)",
     "a transformers directory: config.json, model-*.safetensors with model.safetensors.index.json, "
     "processor_config.json / preprocessor_config.json, tokenizer files, chat_template (any "
     "AutoModelForImageTextToText model works)", "Llama 2 Community License (see the model card)"),
]
MASK2FORMER = ("facebook/mask2former-swin-large-coco-panoptic",
               "config.json, preprocessor_config.json, pytorch_model.bin (or model.safetensors)",
               "model card: other (Mask2Former code: MIT); read the card before commercial use")


def _directory_rows() -> list[dict]:
    from ..refs.mask2former import ModelNotFound, candidate_dirs, resolve_model
    from ..scoring.weights import shell_path

    rows = []
    for backend, used_by, hub, default, named, files, licence in DIRECTORIES:
        d = Path(default)
        rows.append({"metric": used_by, "backend": backend, "file": f"{default}: {named}", "looked_in": [str(d)],
                     "found": str(d) if (d / "config.json").is_file() or (d / "model_index.json").is_file() else None,
                     "source": f"hf:{hub}", "files": files, "licence": licence,
                     "get": f"hf download {hub} --local-dir {shell_path(d)}"})
    hub, files, licence = MASK2FORMER
    try:
        found = str(resolve_model(hub))
    except ModelNotFound:
        found = None
    dest = candidate_dirs(hub)[0]
    rows.append({"metric": "id_refs / edit_refs (segmenter: mask2former)", "backend": "Mask2Former",
                 "file": hub, "looked_in": [str(c) for c in candidate_dirs(hub)] + ["Hugging Face cache"],
                 "found": found, "source": f"hf:{hub}", "files": f"{files} in {dest}", "licence": licence,
                 "get": f"hf download {hub} --local-dir {shell_path(dest)}"})
    return rows


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
    rows = describe() + _directory_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"models directory {models_dir()} ($DATAKIT_MODELS); torch hub {torch_hub_dir()} ($TORCH_HOME/hub). "
          "Nothing is downloaded at run time: each entry says where to get its weights and the command "
          "that puts them where datakit looks.")
    pad = " " * 4
    for r in rows:
        status = f"found {r['found']}" if r["found"] else "MISSING, looked in " + ", ".join(r["looked_in"])
        print(f"\n  {r['backend']}: {r['metric']}\n{pad}{r['file']}\n{pad}{status}")
        if not r["found"] or args.verbose:
            print(f"{pad}from:    {r['source']}\n{pad}files:   {r['files']}\n{pad}licence: {r['licence']}\n"
                  f"{pad}get:     {r['get']}")
        else:
            print(f"{pad}licence: {r['licence']}")
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
    mo = sub.add_parser("models", help="each model backend: where its weights are looked for, found or not, "
                                       "and how to get them",
                        description="List every model backend (pyiqa MUSIQ / CLIP-IQA under $TORCH_HOME/hub, "
                                    "DOVER under $DATAKIT_MODELS/dover, Q-Align one-align, Mask2Former, the Wan 2.1 "
                                    "base model, the LLaVA captioner): where its weights are looked for and whether "
                                    "they are on disk, and, for what is missing, where to get it (hub id or release "
                                    "URL), the exact files and folder layout, the licence, and the command that "
                                    "puts it there. With --pipeline, check what each model stage of a pipeline "
                                    "names. Nothing is downloaded.")
    mo.add_argument("--json", action="store_true", help="print JSON (every field of every entry)")
    mo.add_argument("-v", "--verbose", action="store_true", help="show source, files and command for found "
                    "entries too")
    mo.add_argument("--pipeline", metavar="SPEC", help="check the models every model stage of SPEC names "
                    "(Mask2Former, Wan, captioner, scorers); exit 1 if any is missing")
    mo.set_defaults(func=cmd_models)
    mo.usage = ("datakit models [-h] [--json] [-v] [--pipeline SPEC]\n"
                "       datakit models tiny [-h] [--only NAME[,NAME...]] [--seed SEED] DIR")
    mo_sub = mo.add_subparsers(dest="models_action", metavar="ACTION", prog="datakit models")
    mt = mo_sub.add_parser("tiny", help="write tiny randomly initialised models for smoke runs and tests",
                           description="Write tiny, randomly initialised models built with the real classes "
                                       "(Wan 2.1 pipeline, LLaVA captioner, Q-Align in the one-align layout and as "
                                       "a transformers-native LLaVA, and every other registered backend) "
                                       "into DIR/<name>, each loadable by datakit's normal loaders. Outputs made "
                                       "with them are marked \"synthetic_models\": true. pipelines/smoke.yaml "
                                       "expects them in data/tiny-models.")
    mt.add_argument("dir", help="destination folder (e.g. data/tiny-models)")
    mt.add_argument("--only", metavar="NAME[,NAME...]", help="write only these models (default: all)")
    mt.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    mt.set_defaults(func=cmd_models_tiny)
