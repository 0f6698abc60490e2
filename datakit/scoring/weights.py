"""Where each model scorer's weights are looked for. Nothing is ever downloaded.

- pyiqa metrics use pyiqa's own cache layout under the torch hub directory
  (``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``): ``pyiqa/<file>`` for pyiqa's
  checkpoints and ``clip/RN50.pt`` for OpenAI CLIP, exactly where pyiqa itself would
  have cached them, so an existing cache works as is.
- DOVER looks in ``$DATAKIT_MODELS/dover/`` (default ``~/.cache/datakit/models/dover``),
  then in ``$TORCH_HOME/hub/dover/``; a stage or CLI option can name the file instead.

This module does not import torch, so ``datakit models`` answers instantly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class MissingWeights(FileNotFoundError):
    """A scorer's weight file is not on disk; the message says which file and where it was looked for."""


def torch_hub_dir() -> Path:
    """torch's hub directory, computed as ``torch.hub.get_dir()`` does (without importing torch)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub"


def models_dir() -> Path:
    """datakit's own models directory: ``$DATAKIT_MODELS`` or ``~/.cache/datakit/models``."""
    return Path(os.path.expanduser(os.environ.get("DATAKIT_MODELS", "~/.cache/datakit/models")))


@dataclass(frozen=True)
class WeightFile:
    """One file a scorer needs: a label, the file name and the folders searched in order."""

    label: str
    filename: str
    folders: tuple[Path, ...]
    explicit: Path | None = None       # a path the user named; searched alone when given

    def candidates(self) -> list[Path]:
        if self.explicit is not None:
            return [self.explicit]
        return [d / self.filename for d in self.folders]

    def find(self) -> Path | None:
        for c in self.candidates():
            if c.is_file():
                return c
        return None

    def require(self) -> Path:
        p = self.find()
        if p is None:
            raise MissingWeights(f"{self.label}: {self.filename} not found; looked in "
                                 + ", ".join(str(c) for c in self.candidates()))
        return p


# pyiqa 0.1.16 file names (its URLs end in these, and its cache keeps them as is)
MUSIQ_FILE = "musiq_koniq_ckpt-e95806b9.pth"
CLIP_RN50_FILE = "RN50.pt"
CLIPIQA_PLUS_FILE = "CLIP-IQA+_learned_prompts-603f3273.pth"

DOVER_FILES = {
    "dover": "DOVER.pth",
    "dover_plus_plus": "DOVER_plus_plus.pth",
    "dover_mobile": "DOVER-Mobile.pth",
}


def pyiqa_file(filename: str, label: str) -> WeightFile:
    return WeightFile(label, filename, (torch_hub_dir() / "pyiqa",))


def clip_file() -> WeightFile:
    return WeightFile("OpenAI CLIP RN50 (TorchScript archive)", CLIP_RN50_FILE, (torch_hub_dir() / "clip",))


def dover_file(variant: str, explicit: str | os.PathLike | None = None) -> WeightFile:
    if variant not in DOVER_FILES:
        raise ValueError(f"unknown DOVER variant {variant!r}; allowed: {', '.join(DOVER_FILES)}")
    return WeightFile(f"DOVER ({variant})", DOVER_FILES[variant],
                      (models_dir() / "dover", torch_hub_dir() / "dover"),
                      Path(explicit).expanduser() if explicit else None)


def files_for(metric: str, dover_variant: str = "dover", dover_weights: str | None = None) -> list[WeightFile]:
    """The weight files a metric needs (empty for weight-free metrics)."""
    if metric == "musiq":
        return [pyiqa_file(MUSIQ_FILE, "MUSIQ (KonIQ-10k)")]
    if metric == "clipiqa":
        return [clip_file()]
    if metric == "clipiqa_plus":
        return [clip_file(), pyiqa_file(CLIPIQA_PLUS_FILE, "CLIP-IQA+ learned prompts")]
    if metric == "dover":
        return [dover_file(dover_variant, dover_weights)]
    return []


def missing(metrics: list[str], dover_variant: str = "dover", dover_weights: str | None = None) -> list[str]:
    """One message per weight file the given metrics need and cannot find."""
    out = []
    for m in metrics:
        for wf in files_for(m, dover_variant, dover_weights):
            if wf.find() is None:
                out.append(f"{m}: {wf.label}: {wf.filename} not found; looked in "
                           + ", ".join(str(c) for c in wf.candidates()))
    return out


def describe() -> list[dict]:
    """Every scorer weight file datakit knows: metric, what, where it is looked for, where found.

    Weight-free metrics are listed too (NIQE's shipped parameters), so the table is complete.
    """
    from importlib import resources

    rows = []
    niqe = resources.files("datakit.scoring").joinpath("data/niqe_pristine.npz")
    rows.append({"metric": "niqe", "backend": "shipped", "file": "NIQE pristine model (package data)",
                 "looked_in": [str(niqe)], "found": str(niqe) if niqe.is_file() else None})
    for metric in ("musiq", "clipiqa", "clipiqa_plus"):
        for wf in files_for(metric):
            found = wf.find()
            rows.append({"metric": metric, "backend": "pyiqa", "file": f"{wf.label}: {wf.filename}",
                         "looked_in": [str(c) for c in wf.candidates()], "found": str(found) if found else None})
    for variant in DOVER_FILES:
        wf = dover_file(variant)
        found = wf.find()
        rows.append({"metric": f"dover ({variant})", "backend": "DOVER", "file": wf.filename,
                     "looked_in": [str(c) for c in wf.candidates()], "found": str(found) if found else None})
    return rows
