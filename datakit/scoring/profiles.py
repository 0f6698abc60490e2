"""Filter profiles (``filters/*.yaml``): which metrics to score and which thresholds to keep.

A profile::

    name: offline
    description: weight-free signals only
    score:                  # what a `score` stage naming this profile computes
      metrics: [sharpness, exposure, black, frozen, motion, piqe, niqe]
      frames: 4             # frames sampled per clip for the per-frame metrics
    rules:                  # every rule must hold; a clip failing one is rejected
      - name: blurry        # the reject reason recorded for the clip (letters, digits, _)
        metric: sharpness   # a score name (see datakit.scoring.METRICS)
        min: 20             # keep scores >= min ...
      - name: black_frames
        metric: black_frames
        max: 0.1            # ... and <= max
        missing: pass       # a clip without this score passes (default: it is rejected)

The first failing rule (in file order) is the clip's reject reason; every failing rule is
recorded in ``meta["filter"]["failed"]``. Because every score of every clip is kept (in the
manifests, in the rejects table for rejected clips, and in the clip
index), ``datakit build --index`` (:mod:`datakit.curation`) applies another profile to
them without scoring anything again.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import METRICS, SCORE_KEYS, check_metrics

# filters/ of a source checkout (datakit/scoring/profiles.py -> repo root)
_CHECKOUT_FILTERS = Path(__file__).resolve().parents[2] / "filters"


class ProfileError(ValueError):
    """A profile is missing or invalid; the message names the file and the field."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="reject reason when the rule fails")
    metric: str = Field(description="score name, e.g. sharpness, musiq, dover_technical")
    min: float | None = Field(None, description="keep scores >= min")
    max: float | None = Field(None, description="keep scores <= max")
    missing: Literal["reject", "pass"] = Field("reject", description="verdict when the clip has no such score")

    @field_validator("name")
    @classmethod
    def _code(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_]+", v):
            raise ValueError("may hold only letters, digits and '_' (it becomes a reject reason)")
        return v

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SCORE_KEYS:
            raise ValueError(f"unknown score {v!r}; allowed: {', '.join(SCORE_KEYS)}")
        return v

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is None and self.max is None:
            raise ValueError("a rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self

    def check(self, scores: dict) -> str | None:
        """None if the rule holds, else a sentence saying why not."""
        v = scores.get(self.metric)
        if not isinstance(v, (int, float)) or v != v:  # absent, non-numeric or NaN
            return None if self.missing == "pass" else f"{self.metric} missing"
        if self.min is not None and v < self.min:
            return f"{self.metric} {v:.4g} < min {self.min:g}"
        if self.max is not None and v > self.max:
            return f"{self.metric} {v:.4g} > max {self.max:g}"
        return None


class ProfileScore(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: list[str] = Field(min_length=1)
    frames: int = Field(4, ge=1)

    @field_validator("metrics")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return check_metrics(v)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    score: ProfileScore
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _scored(self):
        made = {k for m in self.score.metrics for k in METRICS[m].scores}
        for r in self.rules:
            if r.metric not in made and r.missing == "reject":
                raise ValueError(f"rule {r.name!r} tests {r.metric!r}, which score.metrics "
                                 f"({', '.join(self.score.metrics)}) does not compute")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique")
        return self

    def failures(self, scores: dict) -> list[tuple[str, str]]:
        """``(rule name, detail)`` of every failing rule, in file order."""
        return [(r.name, d) for r in self.rules if (d := r.check(scores)) is not None]


def resolve(name_or_path: str) -> Path:
    """A profile file: a path as given, else ``filters/NAME.yaml`` in the working directory,
    else in the source checkout datakit runs from."""
    p = Path(name_or_path).expanduser()
    cands = [p] if p.suffix in (".yaml", ".yml") or "/" in name_or_path else []
    cands += [Path("filters") / f"{name_or_path}.yaml", _CHECKOUT_FILTERS / f"{name_or_path}.yaml"]
    for c in cands:
        if c.is_file():
            return c
    raise ProfileError(f"filter profile {name_or_path!r} not found; looked for "
                       + ", ".join(str(c) for c in dict.fromkeys(cands)))


def load(name_or_path: str) -> Profile:
    path = resolve(name_or_path)
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}") from None
    try:
        return Profile.model_validate(tree)
    except ValidationError as e:
        lines = [f"{'.'.join(str(x) for x in err['loc']) or '(profile)'}: {err['msg']}" for err in e.errors()]
        raise ProfileError(f"{path} is invalid:\n" + "\n".join(lines)) from None
