"""caption and captioner: each record's caption, stored as the sample's ``txt``.

``caption`` (a task, per source or clip) takes it from a manifest column or a sidecar beside
the video: ``NAME.txt`` (the whole file is the caption) or ``NAME.json`` (the first of
``json_keys`` present).

``captioner`` (an actor pool, per clip, after ``extract``) asks a transformers
vision-language model from a local directory (``datakit.captioning``) to describe the
clip's ``hr.mp4``. With ``mode: fill`` it captions only clips that have no caption yet
(``caption_source`` ``default``), so manifest and sidecar captions win; ``mode: replace``
captions every clip. The caption then feeds ``sdedit``. On GPU machines set ``num_gpus``
(a fraction such as 0.5 lets two actors share a GPU) and ``batch_size`` (clips per
``generate`` call)::

    - stage: captioner
      model: /models/llava-1.5-7b-hf
      mode: fill
      frames: 4                # 4 frames tiled 2x2 into one image (1: the middle frame)
      max_new_tokens: 160
      num_gpus: 1
      batch_size: 8
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from .. import fsio, media
from ..records import Record
from .base import Stage, StageConfig


class CaptionConfig(StageConfig):
    stage: Literal["caption"] = "caption"
    sources: list[Literal["manifest", "sidecar"]] = Field(
        ["manifest", "sidecar"], min_length=1, description="where to look, in priority order")
    json_keys: list[str] = Field(["caption", "text", "prompt"], description="keys tried in NAME.json")
    required: bool = Field(False, description="reject records with no caption instead of using `default`")
    default: str = Field("", description="caption used when none is found and `required` is false")


def _stem(uri: str) -> str:
    name = uri.rsplit("/", 1)[-1]
    return uri[: len(uri) - len(name)] + (name.rsplit(".", 1)[0] if "." in name else name)


def read_sidecar(source_uri: str, json_keys: list[str]) -> str | None:
    stem = _stem(source_uri)
    if fsio.exists(stem + ".txt"):
        text = fsio.read_text(stem + ".txt").strip()
        if text:
            return text
    if fsio.exists(stem + ".json"):
        try:
            data = json.loads(fsio.read_text(stem + ".json"))
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(data, dict):
            for k in json_keys:
                if isinstance(data.get(k), str) and data[k].strip():
                    return data[k].strip()
    return None


class Caption(Stage):
    name = "caption"
    requires = ("probe",)
    Config = CaptionConfig

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: CaptionConfig = self.config
        for r in records:
            text, origin = None, None
            for src in cfg.sources:
                if src == "manifest":
                    text = r.meta.get("manifest_caption") or None
                else:
                    text = read_sidecar(r.meta["source_uri"], cfg.json_keys)
                if text:
                    origin = src
                    break
            if text is None and cfg.required:
                r.rejected(self.name, "no_caption", f"no caption found in {', '.join(cfg.sources)}")
                continue
            r.meta["caption"] = text if text is not None else cfg.default
            r.meta["caption_source"] = origin or "default"
        return records


class CaptionerConfig(StageConfig):
    stage: Literal["captioner"] = "captioner"
    model: str = Field(description="local directory of a transformers vision-language model")
    model_id: str | None = Field(None, description="id recorded in the json (default: the directory name)")
    mode: Literal["fill", "replace"] = Field("fill", description="fill: only clips without a caption; replace: all")
    prompt: str = Field("Describe this video in detail: the subjects, their appearance and actions, the scene "
                        "and the camera.", description="the instruction given with the clip")
    frames: int = Field(1, ge=1, le=16, description="frames shown (1: the middle frame; more: tiled into a grid)")
    max_side: int | None = Field(768, ge=32, description="the image's long side is at most this many pixels")
    max_new_tokens: int = Field(128, ge=1, le=1024, description="caption length limit in tokens")
    device: str = Field("auto", description="auto (cuda if visible), cpu, cuda[:N]")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="model dtype (auto: bf16 on GPU, float32 on CPU)")


class Captioner(Stage):
    name = "captioner"
    requires = ("extract",)
    uses_model = True
    Config = CaptionerConfig

    @classmethod
    def preflight(cls, cfg: CaptionerConfig) -> list[str]:
        if not (Path(cfg.model) / "config.json").is_file():
            return [f"model directory {cfg.model} not found (no config.json); "
                    f"a tiny test model: `datakit models tiny DIR`"]
        return []

    def setup(self) -> None:
        from ..captioning import Captioner as Model

        cfg: CaptionerConfig = self.config
        self.model = Model(cfg.model, device=cfg.device, dtype=cfg.dtype, prompt=cfg.prompt,
                           max_new_tokens=cfg.max_new_tokens, frames=cfg.frames, max_side=cfg.max_side,
                           model_id=cfg.model_id)

    def process_batch(self, records: list[Record]) -> list[Record]:
        from .. import tiny

        cfg: CaptionerConfig = self.config
        todo = [r for r in records if cfg.mode == "replace" or not (r.meta.get("caption") or "").strip()
                or r.meta.get("caption_source") == "default"]
        if not todo:
            return records
        texts = self.model.caption([media.decode(r.media["hr.mp4"]) for r in todo])
        for r, text in zip(todo, texts):
            r.meta["caption"] = text
            r.meta["caption_source"] = "model"
            r.meta["captioner"] = self.model.describe()
            if self.model.synthetic:
                tiny.mark_record(r.meta, "captioner")
        return records
