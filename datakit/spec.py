"""Pipeline specs: one YAML per corpus job, validated on load.

The spec declares the inputs, the output, the stages in the order they run, and the
shard layout. ``--set key=value`` edits the YAML tree before validation; a stage is
addressed by its name (``--set split.frames=21``), everything else by its path
(``--set shard.max_samples=8``).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import yamlconfig
from .stages import STAGES

StageConfigs = Annotated[Union[tuple(cls.Config for cls in STAGES.values())], Field(discriminator="stage")]


class SpecError(ValueError):
    """A pipeline spec is invalid; the message names the field and what is allowed."""


class ShardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = Field("shard", description="shard name prefix: shards/PREFIX-<16 hex>.tar")
    max_samples: int = Field(64, ge=1, description="records (samples and rejects) a writer commits at a time; "
                                                    "samples per shard at most")
    max_bytes: int = Field(1 << 30, ge=1 << 16, description="a shard is closed once it holds this many bytes")

    @field_validator("prefix")
    @classmethod
    def _no_dots(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", v):
            raise ValueError("may hold only letters, digits, '_' and '-' (WebDataset splits names at dots)")
        return v


class RayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str | None = Field(None, description="existing cluster (auto or HOST:PORT); default: start local Ray")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local Ray (default: all)")
    max_retries: int = Field(3, ge=0, description="retries of a task whose worker died (crash, lost node) "
                                                   "before its sources become `task_failed` rejects")
    stage_reservations: bool = Field(True, description="Ray Data keeps a share of the CPUs for every stage "
                                                       "(off: with few CPUs, the clips of one long source "
                                                       "can be made side by side)")


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    task: Literal["t2v", "mi2v", "edit"] = "t2v"
    input: list[str] = Field(min_length=1, description="folders, globs, list files (.txt) or manifests (.parquet/.csv)")
    output: str
    stages: list[StageConfigs] = Field(min_length=1)
    shard: ShardConfig = ShardConfig()
    ray: RayConfig = RayConfig()

    @field_validator("input", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _order(self):
        seen: list[str] = []
        names = [st.stage for st in self.stages]
        for i, st in enumerate(self.stages):
            if st.stage in seen:
                raise ValueError(f"stages[{i}]: stage {st.stage!r} appears twice")
            missing = [r for r in STAGES[st.stage].requires if r not in seen]
            if missing:
                raise ValueError(f"stages[{i}]: stage {st.stage!r} must come after {', '.join(missing)}")
            later = [a for a in STAGES[st.stage].after if a in names[i + 1:]]
            if later:
                raise ValueError(f"stages[{i}]: stage {st.stage!r} must come after {', '.join(later)}")
            seen.append(st.stage)
        return self

    def stage_names(self) -> list[str]:
        return [s.stage for s in self.stages]

    def config_hash(self, without_filter: bool = False) -> str:
        """Hash of everything that shapes the samples (not inputs, output, sharding, Ray or resources).

        The shard settings stay out on purpose: resume reads every committed batch whatever
        its prefix or size, so changing them on a rerun can never write a sample twice.
        ``without_filter``: the filter stage is left out too (a ``build``: which clips a
        profile keeps changes no sample's bytes, see ``datakit.curation``)."""
        d = self._shaping()
        if without_filter:
            d["stages"] = [s for s in d["stages"] if s.get("stage") != "filter"]
        return _digest(d)

    def index_hash(self, upto: int) -> str:
        """Hash of what a clip index row depends on: the task and the first ``upto`` stages."""
        d = self._shaping()
        return _digest({"task": d["task"], "stages": d["stages"][:upto]})

    def _shaping(self) -> dict:
        knobs = {"num_cpus", "num_gpus", "batch_size", "concurrency"}
        d = self.model_dump(mode="json", exclude={"input", "output", "ray", "shard"})
        d["stages"] = [{k: v for k, v in s.items() if k not in knobs} for s in d["stages"]]
        return d


def _digest(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _stage_hint(err: dict) -> str | None:
    if err["type"] == "union_tag_invalid":
        got = err["input"].get("stage") if isinstance(err["input"], dict) else ""
        return f"unknown stage {got!r}; allowed: {', '.join(STAGES)}"
    return None


def apply_override(tree: dict, assignment: str) -> None:
    """Apply one ``key=value`` (value parsed as YAML) to a raw spec tree."""
    parts, value = yamlconfig.split_assignment(assignment, SpecError)
    stages = tree.get("stages") or []
    named = {s.get("stage"): s for s in stages if isinstance(s, dict)}
    if parts[0] in named and len(parts) > 1:
        node, parts = named[parts[0]], parts[1:]
    elif parts[0] in STAGES:
        raise SpecError(f"--set {assignment!r}: this pipeline has no {parts[0]!r} stage "
                        f"(it has: {', '.join(named)})")
    else:
        node = tree
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"--set {assignment!r}: {p!r} is not a section")
        node = nxt
    node[parts[-1]] = value


def parse(tree: dict, overrides: list[str] = (), source: str = "spec") -> PipelineSpec:
    return yamlconfig.validate(PipelineSpec, tree, overrides, apply_override, source, SpecError, "(spec)",
                               _stage_hint)


def load(path: str | Path, overrides: list[str] = ()) -> PipelineSpec:
    return parse(yamlconfig.load_tree(path, "pipeline spec", SpecError), overrides, source=str(path))
