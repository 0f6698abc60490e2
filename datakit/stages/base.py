"""The stage contract.

A stage declares its name, its resources (``num_cpus``, ``num_gpus``), its
``batch_size`` and, for stages that hold a model, its actor-pool ``concurrency``.
``setup()`` runs once per worker (once per actor for model stages) before the first
batch; ``process_batch()`` maps a list of live records to a list of records (it may
drop, reject or fan out). The runner handles everything else: Ray, rejected records
passing through, per-record error isolation and timings.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..records import Record


class StageConfig(BaseModel):
    """Knobs every stage has. Subclasses add their own and a ``stage`` literal."""

    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(1.0, gt=0, description="CPUs reserved per task or actor")
    num_gpus: float = Field(0.0, ge=0, description="GPUs (or a fraction) per task or actor")
    batch_size: int = Field(1, ge=1, description="records per process_batch call")
    concurrency: int | None = Field(
        None, ge=1, description="actor-pool size for model stages (default: one per GPU or CPU)")


class Stage(ABC):
    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]]
    #: Stages that load a model run as a Ray actor pool (model loaded once per actor);
    #: the others run as Ray tasks.
    uses_model: ClassVar[bool] = False
    #: Stages that must come earlier in the pipeline (checked when the spec loads).
    requires: ClassVar[tuple[str, ...]] = ()
    #: Stages that, when the pipeline has them, must come earlier (e.g. sdedit before synthetic).
    after: ClassVar[tuple[str, ...]] = ()
    #: Stages that make members and can re-make them for one finished sample (``replay``).
    reproducible: ClassVar[bool] = False

    def __init__(self, config: StageConfig):
        self.config = config

    @classmethod
    def preflight(cls, config: StageConfig) -> list[str]:
        """Problems that would fail every record (e.g. missing weight files), found before
        any work starts; the runner refuses to start while any stage reports one."""
        return []

    def setup(self) -> None:
        """Load models or other per-worker state. Called once before the first batch."""

    @abstractmethod
    def process_batch(self, records: list[Record]) -> list[Record]:
        """Process live records; return the records that continue (possibly rejected)."""

    def replay(self, record: Record, recorded: dict) -> dict[str, str]:
        """Re-make this stage's members of one finished sample (``datakit reproduce``).

        ``record`` holds what earlier stages made (members and json fields); ``recorded`` is the
        sample's stored json, whose parameters and seeds the stage uses instead of drawing new
        ones. Writes the members and json fields as ``process_batch`` does. Returns, per member,
        why it is not expected to equal the stored bytes (empty when it should, bit for bit).
        """
        raise NotImplementedError(f"stage {self.name} does not re-make members")
