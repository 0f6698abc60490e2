"""Every stage a pipeline can name, in one explicit table (no import-time scanning)."""
from __future__ import annotations

from .base import Stage, StageConfig
from .caption import Caption, Captioner
from .extract import Extract
from .filter import Filter
from .probe import Probe
from .refs import EditRefs, IdRefs
from .score import Score
from .sdedit import SDEdit
from .split import Split
from .synthetic import Synthetic

STAGES: dict[str, type[Stage]] = {
    cls.name: cls for cls in (Probe, Caption, Split, Extract, Captioner, Score, Filter, IdRefs, EditRefs, SDEdit,
                              Synthetic)}

__all__ = ["STAGES", "Stage", "StageConfig"]
