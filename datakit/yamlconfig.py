"""What pipeline specs and training configs share: YAML in, ``--set key=value``, pydantic
validation with errors that name the field."""
from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Callable, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def split_assignment(assignment: str, error: type[Exception]) -> tuple[list[str], object]:
    """``a.b.c=VALUE`` -> (["a", "b", "c"], VALUE parsed as YAML)."""
    if "=" not in assignment:
        raise error(f"--set {assignment!r}: expected key=value")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise error(f"--set {assignment!r}: empty key")
    return parts, (yaml.safe_load(raw) if raw else "")


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (list indices and union tags followed)."""
    tp: object = model
    for part in loc:
        while True:          # unwrap Annotated / Optional / list / discriminated unions
            origin = typing.get_origin(tp)
            if origin is Annotated:
                tp = typing.get_args(tp)[0]
            elif origin in (list, tuple) and isinstance(part, int):
                tp = typing.get_args(tp)[0]
                break
            elif origin in (Union, types.UnionType):
                members = [m for m in typing.get_args(tp) if m is not type(None)]
                tagged = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)
                          and any(part in typing.get_args(f.annotation) for f in m.model_fields.values())]
                if tagged:   # a discriminated union: this part is the tag, it selects the member
                    tp = tagged[0]
                    break
                if len(members) != 1:
                    return None
                tp = members[0]
            else:
                break
        if isinstance(part, int) or (isinstance(tp, type) and issubclass(tp, BaseModel) and part not in tp.model_fields):
            continue
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            return None
        tp = tp.model_fields[part].annotation
    while typing.get_origin(tp) in (Union, types.UnionType):
        members = [m for m in typing.get_args(tp) if m is not type(None)]
        if len(members) != 1:
            return None
        tp = members[0]
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def unknown_field_message(model: type[BaseModel], loc: tuple) -> str:
    """``unknown field; did you mean 'frames'? (fields here: ...)``"""
    holder = _model_at(model, loc[:-1])
    if holder is None:
        return "unknown field"
    names = list(holder.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), names, n=3, cutoff=0.5)
    guess = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown field{guess} (valid here: {', '.join(names)})"


def format_errors(e: ValidationError, root: str, hint: Callable[[dict], str | None] | None = None,
                  model: type[BaseModel] | None = None) -> str:
    """One line per problem: ``stages[1].split.frames: must be 4k+1 ...``."""
    lines = []
    for err in e.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = hint(err) if hint else None
        if msg is None and err["type"] == "extra_forbidden":
            msg = unknown_field_message(model, err["loc"]) if model is not None else "unknown field"
        lines.append(f"{loc or root}: {msg or err['msg']}")
    return "\n".join(lines)


def load_tree(path: str | Path, what: str, error: type[Exception]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML: {e}") from None


def validate(model: type[M], tree: dict, overrides, apply_override: Callable[[dict, str], None], source: str,
             error: type[Exception], root: str, hint: Callable[[dict], str | None] | None = None) -> M:
    if not isinstance(tree, dict):
        raise error(f"{source}: expected a mapping at the top level")
    for o in overrides:
        apply_override(tree, o)
    try:
        return model.model_validate(tree)
    except ValidationError as e:
        raise error(f"{source} is invalid:\n{format_errors(e, root, hint, model)}") from None
