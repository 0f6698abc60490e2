"""The unit of work that flows between stages.

Before ``split`` a record is one source video (key = source id); from ``split`` on it
is one clip (key = clip id). ``meta`` is JSON-serialisable and becomes the sample's
``json`` member; ``media`` holds encoded members (``hr.mp4``, ``lr.mp4``, ...), never
decoded frames, so records stay small in Ray's object store.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://datakit/clip-id")


def source_id(source_uri: str) -> str:
    """Deterministic id of a source video: uuid5 of its URI, hex (no dots)."""
    return uuid.uuid5(_NAMESPACE, source_uri).hex


def clip_id(source_uri: str, start_frame: int, end_frame: int) -> str:
    """Deterministic clip id: uuid5 over (source URI, start frame, end frame), hex (SPEC §3.2)."""
    return uuid.uuid5(_NAMESPACE, f"{source_uri}\x00{start_frame}\x00{end_frame}").hex


@dataclass
class Reject:
    stage: str    # the stage that rejected the record
    reason: str   # a short code, e.g. ``unreadable``, ``too_short``
    detail: str   # a human-readable sentence

    def to_dict(self) -> dict:
        return {"stage": self.stage, "reason": self.reason, "detail": self.detail}


@dataclass
class Record:
    key: str
    meta: dict = field(default_factory=dict)
    media: dict[str, bytes] = field(default_factory=dict)
    reject: Reject | None = None

    @property
    def ok(self) -> bool:
        return self.reject is None

    def rejected(self, stage: str, reason: str, detail: str) -> "Record":
        self.reject = Reject(stage, reason, detail)
        self.media = {}
        return self
