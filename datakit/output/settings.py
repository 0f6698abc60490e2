"""What the writer needs to know: a small, picklable object made from the spec once."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutputSettings:
    root: str                      # normalised URI of the output root
    prefix: str                    # shard name prefix
    config_hash: str               # hash of the resolved spec
    pipeline: str                  # the spec's name
    task: str                      # t2v | mi2v | edit
    max_samples: int = 64          # samples per shard
    max_bytes: int = 1 << 30       # a shard is closed once it holds this many bytes
    metrics: tuple[str, ...] = field(default_factory=tuple)   # score columns, in order
    #: write clip index rows (ROOT/index/) for records that carry scores
    index: bool = False
    #: "run": finished records become samples; "curate": scored records become index rows only
    mode: str = "run"
    #: hash of the stages up to the filter (what an index row depends on); see datakit.curation
    index_hash: str = ""
