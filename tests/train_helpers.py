"""What the trainer's test modules share: the tiny models, the corpora and configs.

The tiny models and the corpora are built once per test run (shared by the test processes and
every module that asks, see ``conftest.shared_once``), because building the corpora runs three
pipelines.
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from conftest import REPO, shared_once


def tiny_models(tmp_path_factory) -> Path:
    from datakit import tiny

    return shared_once(tmp_path_factory, "train-tiny-models", tiny.write)


def corpora(tmp_path_factory, sample_dir: Path, models: Path,
            tasks: tuple[str, ...] = ("t2v", "mi2v", "edit")) -> dict[str, str]:
    """t2v shards from the smoke pipeline as shipped (test_sdedit_smoke checks them); mi2v and edit
    shards from the demo pipelines (face clip). Read only."""
    from datakit import runner, spec

    face = str(sample_dir / "carphone_pristine.mp4")
    jobs = {
        "t2v": ("smoke", [f"input={sample_dir}", f"captioner.model={models / 'captioner'}",
                          f"sdedit.model={models / 'wan'}"]),
        "mi2v": ("demo_mi2v", [f"input={face}", "split.max_clips_per_source=1"]),
        "edit": ("demo_edit", [f"input={face}", "split.max_clips_per_source=1"]),
    }
    def build(name: str, ov: list[str], folder: Path) -> None:
        res = runner.run(spec.load(REPO / "pipelines" / f"{name}.yaml", ov + [f"output={folder / 'out'}"]),
                         progress=False)
        assert res.samples_written >= 1, f"{name} wrote no samples"

    return {task: str(shared_once(tmp_path_factory, f"train-corpus-{task}", partial(build, name, ov)) / "out")
            for task, (name, ov) in jobs.items() if task in tasks}


def tiny_config(models: Path, roots, output, *overrides):
    from datakit.train import config

    return config.load(REPO / "pipelines" / "train_tiny.yaml",
                       [f"base_model={models / 'wan'}", f"data.roots={json.dumps(list(roots))}",
                        f"output={output}", *overrides])
