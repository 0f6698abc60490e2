"""What the trainer's test modules share: the tiny models, the corpora and configs.

The tiny models and the corpora are built once per test session (under pytest's base temp
folder, reused by every module that asks), because building the corpora runs three pipelines.
"""
from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO

_DONE = "COMPLETE"


def tiny_models(tmp_path_factory) -> Path:
    from datakit import tiny

    d = tmp_path_factory.getbasetemp() / "train-tiny-models"
    if not (d / _DONE).is_file():
        tiny.write(d)
        (d / _DONE).write_text("")
    return d


def corpora(tmp_path_factory, sample_dir: Path, models: Path) -> dict[str, str]:
    """t2v shards from the smoke pipeline; mi2v and edit shards from the demo pipelines (face clip)."""
    from datakit import runner, spec

    root = tmp_path_factory.getbasetemp() / "train-corpora"
    face = str(sample_dir / "carphone_pristine.mp4")
    jobs = {
        "t2v": ("smoke", [f"input={sample_dir}", f"captioner.model={models / 'captioner'}",
                          f"sdedit.model={models / 'wan'}"]),
        "mi2v": ("demo_mi2v", [f"input={face}", "split.max_clips_per_source=1"]),
        "edit": ("demo_edit", [f"input={face}", "split.max_clips_per_source=1"]),
    }
    out = {}
    for task, (name, ov) in jobs.items():
        dest = root / task
        if not (root / f"{task}.{_DONE}").is_file():
            res = runner.run(spec.load(REPO / "pipelines" / f"{name}.yaml", ov + [f"output={dest}"]),
                             progress=False)
            assert res.samples_written >= 1, f"{name} wrote no samples"
            (root / f"{task}.{_DONE}").write_text("")
        out[task] = str(dest)
    return out


def tiny_config(models: Path, roots, output, *overrides):
    from datakit.train import config

    return config.load(REPO / "pipelines" / "train_tiny.yaml",
                       [f"base_model={models / 'wan'}", f"data.roots={json.dumps(list(roots))}",
                        f"output={output}", *overrides])
