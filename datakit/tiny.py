"""Tiny, randomly initialised models for smoke runs and tests.

Each model backend can register a *writer*: a function ``writer(dest: Path, seed: int) -> Path``
that builds the backend's model with its real classes at a tiny size, saves it with
``save_pretrained`` (or the backend's own format) into ``dest`` and returns ``dest``.
The backend's normal loader must then load it unchanged, so smoke runs and tests exercise
the same loading code users run with real weights.

Every directory written here holds a marker file (:data:`MARKER`). Loaders check it with
:func:`is_tiny` and stages then set ``"synthetic_models": true`` (and name the backend in
``"synthetic_model_backends"``) in the sample json via :func:`mark_record`, so output made
with random weights can never pass for real data.

Registering a writer is one line in :data:`WRITERS` (``name: "module:function"``); the
module is imported only when that writer runs, so this table costs nothing at import.
``datakit models tiny DIR`` writes every registered model into ``DIR/<name>``.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Callable

MARKER = "DATAKIT_TINY_RANDOM_MODEL.json"

#: name -> "module:function". The directory written for ``name`` is ``ROOT/name``.
WRITERS: dict[str, str] = {
    "wan": "datakit.sdedit.tiny:write_tiny_wan",
    "captioner": "datakit.captioning.tiny:write_tiny_captioner",
    "qalign": "datakit.scoring.qalign.tiny:write_tiny_onealign",
    "qalign_llava": "datakit.scoring.qalign.tiny:write_tiny_llava",
}


def writer(name: str) -> Callable[..., Path]:
    if name not in WRITERS:
        raise KeyError(f"no tiny-model writer named {name!r}; known: {', '.join(sorted(WRITERS))}")
    from . import quiet

    quiet.model_libraries()               # the writers import diffusers / transformers
    module, func = WRITERS[name].split(":")
    return getattr(importlib.import_module(module), func)


def write(root: str | Path, names: list[str] | None = None, seed: int = 0) -> dict[str, Path]:
    """Write the tiny models ``names`` (default: all registered) into ``root/<name>``."""
    root = Path(root)
    out = {}
    for name in names or list(WRITERS):
        out[name] = writer(name)(root / name, seed=seed)
    return out


def mark(dest: str | Path, backend: str, details: dict | None = None) -> None:
    """Drop the marker saying ``dest`` holds a tiny random model (call it last in a writer)."""
    info = {"synthetic": True, "backend": backend,
            "note": "tiny randomly initialised model written by datakit for smoke runs and tests; "
                    "its outputs are meaningless"}
    info.update(details or {})
    (Path(dest) / MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def is_tiny(path: str | Path | None) -> bool:
    """True when ``path`` (a model directory or a file inside one) was written by a tiny writer."""
    if path is None:
        return False
    p = Path(path)
    d = p if p.is_dir() else p.parent
    return (d / MARKER).is_file()


def mark_record(meta: dict, backend: str) -> None:
    """Flag a sample's json as made (partly) with tiny random models."""
    meta["synthetic_models"] = True
    names = meta.setdefault("synthetic_model_backends", [])
    if backend not in names:
        names.append(backend)


# Words the tiny tokenizers know: enough for captions to tokenise into real ids (the rest
# map to the unknown token), small enough that embedding tables stay tiny.
CAPTION_WORDS = (
    "a an the of in on at with and or to from by for is are was were be it its this that these those "
    "man woman person people child children boy girl men women face faces hand hands hair eyes smile "
    "dog cat bird horse car cars bike bikes bicycle street road city building house room window door "
    "tree trees grass field sky cloud clouds sun water sea river beach mountain snow rain night day "
    "light dark bright red green blue yellow white black brown gray orange pink purple colour color "
    "walks walking runs running rides riding sits sitting stands standing looks looking talks talking "
    "moves moving camera video clip scene shot close up wide view slow fast motion background foreground "
    "left right front behind near far small large big little old young happy over under through into "
    "animation cartoon bunny rabbit phone table chair food plays playing holding wearing shirt jacket "
    "describe detail details what happens image frame frames short long one two three several many"
).split()


def word_tokenizer(specials: list[str], template: str | None = None, words=CAPTION_WORDS):
    """A word-level fast tokenizer built offline with the ``tokenizers`` library.

    ``specials`` come first (ids 0, 1, ...); ``template`` (e.g. ``"$A </s>"``) appends
    special tokens to every encoded sequence. Returns the ``tokenizers.Tokenizer``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    unk = next((s for s in specials if "unk" in s), specials[0])
    tok = Tokenizer(models.WordLevel(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=list(specials), min_frequency=1)
    corpus = [" ".join(words), ". , ! ? ' \" : ; - ( ) 0 1 2 3 4 5 6 7 8 9"]
    tok.train_from_iterator(corpus, trainer=trainer)
    if template:
        used = [t for t in specials if t in template.split()]
        tok.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(t, tok.token_to_id(t)) for t in used])
    return tok
