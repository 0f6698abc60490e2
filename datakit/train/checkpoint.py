"""Checkpoints: safetensors for the weights and the optimizer state, one small json.

Layout of ``OUTPUT/checkpoints/step-00001000/``::

    model.safetensors       the UniMMVSR state dict (float32), Wan names where they are Wan modules
    optimizer.safetensors   AdamW state, keyed ``<parameter name>::<field>`` (exp_avg, exp_avg_sq, step)
    trainer.json            step, items consumed, stage, the resolved training config, the base model
                            directory, the model's structure, optimizer hyper-parameters, inference defaults

Sharded (FSDP) checkpoints hold, instead of the two safetensors files, one pair per worker::

    model-00000-of-00002.safetensors       worker 0's shard of every parameter (dim-0 chunk)
    optimizer-00000-of-00002.safetensors   worker 0's shard of the AdamW state
    ...

and ``trainer.json`` says ``"shards": {"count": 2, "dim": 0}``. Each worker's shard of a
parameter is ``torch.chunk(full, count, dim=0)[rank]`` (FSDP2's layout; possibly empty), so
the full tensor is the concatenation of the shards in rank order: a sharded checkpoint loads
into an unsharded model (``datakit upscale``, one worker, DDP) and into any other number of
FSDP workers; with the same number of workers each reads only its own files.

``trainer.json`` is written last (after every worker's files): a directory without it is an
interrupted save and is ignored (and removed by the next save). Every file goes through
:mod:`datakit.fsio`, so the output may be a local path or an object-store URI.
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


def shard_name(kind: str, rank: int, count: int) -> str:
    return f"{kind}-{rank:05d}-of-{count:05d}.safetensors"


def _local(t):
    """The tensor a worker holds: a DTensor's local shard, anything else itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def save(output: str, step: int, model, opt, info: dict, keep: int) -> str:
    """Write a checkpoint for optimizer step ``step``; drop all but the newest ``keep`` complete ones."""
    d = step_dir(output, step)
    fsio.makedirs(d)
    names = {i: n for i, (n, _) in enumerate(model.named_parameters())}
    fsio.write_atomic(fsio.join(d, "model.safetensors"), _state_to_bytes(model.state_dict()))
    tensors, groups = optimizer_tensors(opt, names)
    fsio.write_atomic(fsio.join(d, "optimizer.safetensors"), _state_to_bytes(tensors))
    return _finish(output, step, opt, groups, info, keep)


def save_shard(output: str, step: int, model, opt, rank: int, count: int) -> list[dict]:
    """Write worker ``rank``'s shard of a sharded checkpoint; returns the optimizer's param groups.

    Every worker calls this, then (after a barrier) worker 0 calls :func:`finish_sharded`.
    """
    d = step_dir(output, step)
    fsio.makedirs(d)
    names = {i: n for i, (n, _) in enumerate(model.named_parameters())}
    state = {k: _local(v) for k, v in model.state_dict().items()}
    fsio.write_atomic(fsio.join(d, shard_name("model", rank, count)), _state_to_bytes(state))
    tensors, groups = optimizer_tensors(opt, names)
    fsio.write_atomic(fsio.join(d, shard_name("optimizer", rank, count)),
                      _state_to_bytes({k: _local(v) for k, v in tensors.items()}))
    return groups


def finish_sharded(output: str, step: int, opt, groups: list[dict], info: dict, keep: int, count: int) -> str:
    """Complete a sharded checkpoint once every worker's files are written (worker 0 only)."""
    return _finish(output, step, opt, groups, info | {"shards": {"count": count, "dim": 0}}, keep)


def _finish(output: str, step: int, opt, groups: list[dict], info: dict, keep: int) -> str:
    d = step_dir(output, step)
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


def _read(ckpt: str, kind: str, rank: int | None = None) -> dict:
    """``kind`` (model / optimizer) tensors of a checkpoint: the full tensors, or worker ``rank``'s
    shard when the checkpoint is sharded into as many shards as the caller has workers."""
    shards = read_info(ckpt).get("shards")
    if not shards:
        return _bytes_to_state(fsio.read_bytes(fsio.join(ckpt, f"{kind}.safetensors")))
    count = int(shards["count"])
    if rank is not None:
        return _bytes_to_state(fsio.read_bytes(fsio.join(ckpt, shard_name(kind, rank, count))))
    import torch

    parts = [_bytes_to_state(fsio.read_bytes(fsio.join(ckpt, shard_name(kind, r, count)))) for r in range(count)]
    out = {}
    for key, first in parts[0].items():
        if first.dim() == 0:           # per-parameter scalars (AdamW's step): the same on every worker
            out[key] = first
        else:
            out[key] = torch.cat([p[key] for p in parts], dim=0)
    return out


def _fit_to(target, value, name: str, ckpt: str):
    """``value`` (a full tensor or this worker's shard) laid out like ``target`` (a tensor or DTensor)."""
    import torch

    if not hasattr(target, "to_local") or value.dim() == 0:
        return value
    from torch.distributed.tensor import DTensor

    local = target.to_local()
    if tuple(value.shape) != tuple(local.shape):      # a full tensor: take this worker's chunk
        mesh = target.device_mesh
        rank, count = mesh.get_local_rank(), mesh.size()
        chunks = torch.chunk(value, count, dim=0)
        value = chunks[rank] if rank < len(chunks) else value[:0]
        if tuple(value.shape) != tuple(local.shape):
            raise CheckpointError(f"{ckpt}: {name} shard {tuple(value.shape)} does not fit {tuple(local.shape)}")
    return DTensor.from_local(value.to(local.device, local.dtype), target.device_mesh, target.placements,
                              shape=target.shape, stride=target.stride(), run_check=False)


def _same_sharding(ckpt: str, model) -> int | None:
    """This worker's rank when ``model`` is sharded like the checkpoint (read only its own files), else None."""
    shards = read_info(ckpt).get("shards")
    p = next(iter(model.parameters()), None)
    if not shards or p is None or not hasattr(p, "device_mesh"):
        return None
    mesh = p.device_mesh
    return mesh.get_local_rank() if mesh.size() == int(shards["count"]) else None


def load_model_state(model, ckpt: str, strict: bool = True) -> None:
    """Load weights into ``model`` (plain or FSDP-sharded) from a plain or sharded checkpoint."""
    import torch

    state = _read(ckpt, "model", _same_sharding(ckpt, model))
    current = model.state_dict()
    missing = [k for k in current if k not in state]
    unexpected = [k for k in state if k not in current]
    if strict and (missing or unexpected):
        raise CheckpointError(f"{ckpt}: weights do not fit the model (missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]})")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            if name not in current:
                continue
            target = params.get(name, current[name])
            if hasattr(target, "to_local"):
                target.to_local().copy_(_fit_to(target, value, name, ckpt).to_local())
            else:
                if tuple(target.shape) != tuple(value.shape):
                    raise CheckpointError(f"{ckpt}: {name} has shape {tuple(value.shape)}, the model "
                                          f"{tuple(target.shape)}")
                target.copy_(value)


def load_optimizer_state(opt, model, ckpt: str) -> None:
    tensors = _read(ckpt, "optimizer", _same_sharding(ckpt, model))
    info = read_info(ckpt)
    named = list(model.named_parameters())
    names = [n for n, _ in named]
    pos = {n: i for i, n in enumerate(names)}
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        name, _, fld = key.rpartition("::")
        if name not in pos:
            raise CheckpointError(f"{ckpt}: optimizer state for unknown parameter {name}")
        state.setdefault(pos[name], {})[fld] = _fit_to(named[pos[name]][1], v, key, ckpt)
    groups = []
    for g in info["optimizer"]["param_groups"]:
        g = dict(g)
        g["params"] = [pos[n] for n in g["params"]]
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})
