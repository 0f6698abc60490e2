"""Where each model scorer's weights are looked for. Nothing is ever downloaded.

- pyiqa metrics use pyiqa's own cache layout under the torch hub directory
  (``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``): ``pyiqa/<file>`` for pyiqa's
  checkpoints and ``clip/RN50.pt`` for OpenAI CLIP, exactly where pyiqa itself would
  have cached them, so an existing cache works as is.
- DOVER looks in ``$DATAKIT_MODELS/dover/`` (default ``~/.cache/datakit/models/dover``),
  then in ``$TORCH_HOME/hub/dover/``; a stage or CLI option can name the file instead.
- Q-Align (and other model *directories*, see :class:`ModelDir`): a path as given, else
  ``$DATAKIT_MODELS/<hub id>`` (or ``<owner>--<name>``), else the Hugging Face cache
  (``HF_HOME``, looked up offline).

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


@dataclass(frozen=True)
class ModelDir:
    """A model directory (``config.json`` + weights): a path, or a hub id looked up on disk only."""

    label: str
    model: str

    def is_path(self) -> bool:
        p = Path(os.path.expanduser(self.model))
        return p.is_absolute() or self.model.startswith(".") or p.exists() or "/" not in self.model

    def candidates(self) -> list[Path]:
        if self.is_path():
            return [Path(os.path.expanduser(self.model))]
        return [models_dir() / self.model, models_dir() / self.model.replace("/", "--")]

    def find(self) -> Path | None:
        for d in self.candidates():
            if (d / "config.json").is_file():
                return d
        if not self.is_path():
            try:
                from huggingface_hub import snapshot_download

                d = Path(snapshot_download(self.model, local_files_only=True))
                if (d / "config.json").is_file():
                    return d
            except Exception:  # noqa: BLE001 - not cached (or no hub library): not found
                pass
        return None

    def message(self) -> str:
        looked = ", ".join(str(d) for d in self.candidates())
        return (f"{self.label} {self.model!r} not found; looked in {looked}"
                + ("" if self.is_path() else " and the Hugging Face cache")
                + " (nothing is downloaded: put the model directory there or name its path)")


QALIGN_MODEL = "q-future/one-align"


def qalign_model(model: str | None = None) -> ModelDir:
    return ModelDir("Q-Align model", model or QALIGN_MODEL)


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


QALIGN_METRICS = ("qalign", "qalign_image")


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


def missing(metrics: list[str], dover_variant: str = "dover", dover_weights: str | None = None,
            qalign: str | None = None) -> list[str]:
    """One message per weight file (or model directory) the given metrics need and cannot find."""
    out = []
    if any(m in QALIGN_METRICS for m in metrics):
        md = qalign_model(qalign)
        if md.find() is None:
            out.append(f"{'/'.join(m for m in metrics if m in QALIGN_METRICS)}: {md.message()}")
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
