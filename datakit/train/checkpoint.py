"""Checkpoints: safetensors for the weights and the optimizer state, one small json.

Layout of ``OUTPUT/checkpoints/step-00001000/``::

    model.safetensors       the UniMMVSR state dict (float32), Wan names where they are Wan modules
    optimizer.safetensors   AdamW state, keyed ``<parameter name>::<field>`` (exp_avg, exp_avg_sq, step)
    trainer.json            step, items consumed, stage, the resolved training config, the base model
                            directory, the model's structure, optimizer hyper-parameters, inference defaults

``trainer.json`` is written last: a directory without it is an interrupted save and is
ignored (and removed by the next save). Every file goes through :mod:`datakit.fsio`, so
the output may be a local path or an object-store URI.
"""
from __future__ import annotations

import json
import logging
import re

from .. import fsio

log = logging.getLogger("datakit.train")

CHECKPOINT_FORMAT = 1
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not fit the model."""


def checkpoints_root(output: str) -> str:
    return fsio.join(fsio.normalize(output), "checkpoints")


def step_dir(output: str, step: int) -> str:
    return fsio.join(checkpoints_root(output), f"step-{step:08d}")


def list_checkpoints(output: str) -> list[tuple[int, str, bool]]:
    """(step, dir, complete) for every ``step-*`` directory under ``OUTPUT/checkpoints``, by step."""
    root = checkpoints_root(output)
    if not fsio.exists(root):
        return []
    dirs: dict[int, str] = {}
    complete: set[int] = set()
    for f in fsio.list_files(root, recursive=True):
        parts = f[len(root):].strip("/").split("/")
        if len(parts) != 2 or not (m := _STEP_DIR.match(parts[0])):
            continue
        step = int(m.group(1))
        dirs[step] = fsio.join(root, parts[0])
        if parts[1] == "trainer.json":
            complete.add(step)
    return [(s, dirs[s], s in complete) for s in sorted(dirs)]


def resolve(path: str) -> str:
    """A checkpoint directory: ``path`` itself, or the latest complete one of a training output."""
    p = fsio.normalize(path)
    if fsio.exists(fsio.join(p, "trainer.json")):
        return p
    done = [d for _, d, ok in list_checkpoints(p) if ok]
    if not done:
        raise CheckpointError(f"{path}: neither a checkpoint (no trainer.json) nor a training output with one")
    return done[-1]


def read_info(ckpt: str) -> dict:
    return json.loads(fsio.read_text(fsio.join(ckpt, "trainer.json")))


def _state_to_bytes(tensors: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def _bytes_to_state(data: bytes) -> dict:
    from safetensors.torch import load

    return load(data)


def optimizer_tensors(opt, names: dict[int, str]) -> tuple[dict, list[dict]]:
    """(tensors keyed ``name::field``, param groups without the params) of an optimizer."""
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            import torch

            tensors[f"{names[idx]}::{k}"] = v if isinstance(v, torch.Tensor) else torch.tensor(v)
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": [names[i] for i in g["params"]]}
              for g in sd["param_groups"]]
    return tensors, groups


def save(output: str, step: int, model, opt, info: dict, keep: int) -> str:
    """Write a checkpoint for optimizer step ``step``; drop all but the newest ``keep`` complete ones."""
    d = step_dir(output, step)
    fsio.makedirs(d)
    named = list(model.named_parameters())
    names = {i: n for i, (n, _) in enumerate(named)}
    fsio.write_atomic(fsio.join(d, "model.safetensors"), _state_to_bytes(model.state_dict()))
    tensors, groups = optimizer_tensors(opt, names)
    fsio.write_atomic(fsio.join(d, "optimizer.safetensors"), _state_to_bytes(tensors))
    doc = {"format": CHECKPOINT_FORMAT, "step": step, **info, "optimizer": {"class": type(opt).__name__,
                                                                          "param_groups": groups}}
    fsio.write_atomic(fsio.join(d, "trainer.json"), json.dumps(doc, indent=2, sort_keys=True).encode())
    found = list_checkpoints(output)
    complete = [s for s, _, ok in found if ok]
    drop = set(complete[:-keep]) | {s for s, _, ok in found if not ok and s < step}   # old, or interrupted saves
    for s, old, _ in found:
        if s in drop and s != step:
            _remove_dir(old)
    return d


def _remove_dir(uri: str) -> None:
    fs, path = fsio.resolve(uri)
    try:
        fs.delete_dir(path)
    except OSError as e:   # a reader may hold it; not worth failing a run over
        log.warning("could not remove old checkpoint %s: %s", uri, e)


def load_model_state(model, ckpt: str, strict: bool = True) -> None:
    state = _bytes_to_state(fsio.read_bytes(fsio.join(ckpt, "model.safetensors")))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise CheckpointError(f"{ckpt}: weights do not fit the model (missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]})")


def load_optimizer_state(opt, model, ckpt: str) -> None:
    tensors = _bytes_to_state(fsio.read_bytes(fsio.join(ckpt, "optimizer.safetensors")))
    info = read_info(ckpt)
    names = [n for n, _ in model.named_parameters()]
    pos = {n: i for i, n in enumerate(names)}
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        name, _, fld = key.rpartition("::")
        if name not in pos:
            raise CheckpointError(f"{ckpt}: optimizer state for unknown parameter {name}")
        state.setdefault(pos[name], {})[fld] = v
    groups = []
    for g in info["optimizer"]["param_groups"]:
        g = dict(g)
        g["params"] = [pos[n] for n in g["params"]]
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})
