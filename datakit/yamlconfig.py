"""What pipeline specs and training configs share: YAML in, ``--set key=value``, pydantic
validation with errors that name the field."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

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


def format_errors(e: ValidationError, root: str, hint: Callable[[dict], str | None] | None = None) -> str:
    """One line per problem: ``stages[1].split.frames: must be 4k+1 ...``."""
    lines = []
    for err in e.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = (hint(err) if hint else None) or ("unknown field" if err["type"] == "extra_forbidden" else err["msg"])
        lines.append(f"{loc or root}: {msg}")
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
        raise error(f"{source} is invalid:\n{format_errors(e, root, hint)}") from None
