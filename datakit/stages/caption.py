"""caption: take each record's caption from a manifest column or a sidecar file.

Sidecars sit beside the video: ``NAME.txt`` (the whole file is the caption) or
``NAME.json`` (the first of ``json_keys`` present). Captioning models plug in later.
"""
from __future__ import annotations

import json
from typing import Literal

from pydantic import Field

from .. import fsio
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
