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
        return p.is_absolute() or self.model.startswith(".") or p.exists()

    def candidates(self) -> list[Path]:
        if self.is_path():
            return [Path(os.path.expanduser(self.model))]
        return [models_dir() / self.model, models_dir() / self.model.replace("/", "--")]

    def find(self) -> Path | None:
        for d in self.candidates():
            if (d / "config.json").is_file():
                return d
        if not self.is_path() and "/" in self.model:
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
                + ("" if self.is_path() or "/" not in self.model else " and the Hugging Face cache")
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


# where each weight file comes from: (source, licence); the placing command is built per row
PYIQA_HUB = "chaofengc/IQA-PyTorch-Weights"
PYIQA_LICENCE = "pyiqa: PolyForm Noncommercial 1.0.0 and S-Lab License 1.0 (non-commercial)"
CLIP_RN50_URL = ("https://openaipublic.azureedge.net/clip/models/"
                 "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt")
DOVER_URLS = {
    "dover": "https://github.com/QualityAssessment/DOVER/releases/download/v0.1.0/DOVER.pth",
    "dover_plus_plus": "https://huggingface.co/teowu/DOVER/resolve/main/DOVER_plus_plus.pth",
    "dover_mobile": "https://github.com/QualityAssessment/DOVER/releases/download/v0.5.0/DOVER-Mobile.pth",
}
DOVER_LICENCE = "DOVER (VQAssessment/DOVER): S-Lab License 1.0 (non-commercial)"
QALIGN_LICENCE = ("Q-Align code (Q-Future/Q-Align): S-Lab License 1.0 (non-commercial); the one-align model card "
                  "says MIT: treat the weights as non-commercial unless the authors say otherwise")
QALIGN_FILES = ("config.json; pytorch_model-00001-of-00002.bin, pytorch_model-00002-of-00002.bin and "
                "pytorch_model.bin.index.json (or model*.safetensors with model.safetensors.index.json); "
                "tokenizer.model, tokenizer_config.json, special_tokens_map.json; preprocessor_config.json. "
                "The repository's *.py files (remote code) are not used")


def shell_path(path: Path) -> str:
    """A path for a shell command: ``~`` for the home directory, quoted if it has spaces."""
    home = str(Path.home())
    s = str(path)
    s = "~" + s[len(home):] if s == home or s.startswith(home + "/") else s
    return f'"{s}"' if " " in s else s


def _curl(url: str, dest: Path) -> str:
    return f"mkdir -p {shell_path(dest.parent)} && curl -L -o {shell_path(dest)} {url}"


def _row(metric, backend, what, looked, found, source, files, licence, command) -> dict:
    return {"metric": metric, "backend": backend, "file": what, "looked_in": [str(c) for c in looked],
            "found": str(found) if found else None, "source": source, "files": files, "licence": licence,
            "get": command}


def qalign_status() -> str:
    """Why datakit, not the released remote code, builds one-align (for `datakit models` and the docs)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tv = version("transformers")
    except PackageNotFoundError:
        tv = "not installed"
    return (f"the released remote code (trust_remote_code) does not run on the installed transformers ({tv}): "
            "it is written for transformers 4.36 (removed helpers find_pruneable_heads_and_indices, "
            "invert_attention_mask, Llama*RotaryEmbedding variants and attention classes; tuple KV cache; "
            "the undeclared package icecream; its constructor fetches the tokenizer by hub id). datakit "
            "rebuilds mPLUG-Owl2 (datakit/scoring/qalign/owl2.py) and loads the released weights unchanged")


def describe(qalign: str | None = None) -> list[dict]:
    """Every scorer weight file datakit knows: metric, what, where it is looked for, where found,
    where to get it (``source``), the exact files (``files``), the licence and a command (``get``)
    that puts it where it is looked for.

    Weight-free metrics are listed too (NIQE's shipped parameters), so the table is complete.
    """
    from importlib import resources

    rows = []
    niqe = resources.files("datakit.scoring").joinpath("data/niqe_pristine.npz")
    rows.append(_row("niqe", "shipped", "NIQE pristine model (package data)", [niqe],
                     niqe if niqe.is_file() else None, "shipped with datakit (datakit/scoring/data/README.md)",
                     "niqe_pristine.npz", "LIVE NIQE parameters via BasicSR (Apache-2.0)", "nothing to do"))
    hub = torch_hub_dir()
    for metric in ("musiq", "clipiqa", "clipiqa_plus"):
        for wf in files_for(metric):
            if wf.filename == CLIP_RN50_FILE:
                source, licence = CLIP_RN50_URL, "OpenAI CLIP: MIT; CLIP-IQA through " + PYIQA_LICENCE
                command = _curl(CLIP_RN50_URL, wf.folders[0] / wf.filename)
                files = f"{wf.filename} (OpenAI's TorchScript archive) in {hub / 'clip'}"
            else:
                source, licence = f"hf:{PYIQA_HUB} (file {wf.filename})", PYIQA_LICENCE
                command = f"hf download {PYIQA_HUB} {wf.filename} --local-dir {shell_path(wf.folders[0])}"
                files = f"{wf.filename} in {wf.folders[0]}"
            rows.append(_row(metric, "pyiqa", f"{wf.label}: {wf.filename}", wf.candidates(), wf.find(), source,
                             files, licence, command))
    for variant in DOVER_FILES:
        wf = dover_file(variant)
        rows.append(_row(f"dover ({variant})", "DOVER", wf.filename, wf.candidates(), wf.find(),
                         DOVER_URLS[variant], f"{wf.filename} (a plain state dict) in {wf.folders[0]}",
                         DOVER_LICENCE, _curl(DOVER_URLS[variant], wf.folders[0] / wf.filename)))
    md = qalign_model(qalign)
    dest = md.candidates()[0]
    rows.append(_row("qalign, qalign_image", "Q-Align", f"one-align ({md.model}): {qalign_status()}",
                     md.candidates() + ([] if md.is_path() or "/" not in md.model else ["Hugging Face cache"]),
                     md.find(),
                     f"hf:{QALIGN_MODEL} (or any transformers-native VLM directory: the Q-Align method on it)",
                     f"a directory {dest} holding " + QALIGN_FILES, QALIGN_LICENCE,
                     f"hf download {QALIGN_MODEL} --local-dir {shell_path(dest)}"))
    return rows
