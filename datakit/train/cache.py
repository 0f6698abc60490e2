"""The latent cache: VAE latents of HR and upscaled LR windows and the caption's text embedding.

Encoding HR and LR through the VAE and the caption through UMT5 at every step is most of a
training step on small models and a large share on big ones. ``datakit cache-latents
CONFIG`` encodes them once per sample, with the training config's base model, stage
lengths and VAE settings; ``data.latent_cache.use: true`` then trains from the cache.

What is fixed by the cache and what stays per step:

* fixed: the frame windows (for each stage length ``F``, windows starting every
  ``window_stride`` frames, default ``F − 1``, plus one ending at the clip's last frame; the
  sampler picks one of them where it would otherwise pick any start) and the spatial cut
  (whole frames cut to a multiple of 16 about the centre; random crops need pixels);
* per step, as without the cache: task, sample, window choice, null prompt, reference
  augmentation of the ID images (Table 3) and the edit reference video's shift (both encoded
  from pixels every step), σ, noise, and the LR latent's noise augmentation.

Layout, next to a dataset root's shards (one cache per set of settings, so caches for other
base models or stage lengths live side by side)::

    ROOT/latents/<cache id>/cache.json   the settings (below) and counts
    ROOT/latents/<cache id>/NAME.tar     one member KEY.latents.safetensors per sample of shard NAME
    ROOT/latents/<cache id>/NAME.json    {key: [offset, size]} of each member; written after the
                                         tar, its presence marks the cache shard complete

The cache id is a hash of the settings: base model (folder name, VAE and text-encoder
configs), resolved VAE tiling, stage lengths, window stride, stored dtype and this format's
version. Each member is a safetensors file: ``hr.F`` and ``lr.F`` ``(windows, z, f, h, w)``
normalised latents per stage length ``F``, ``text`` ``(L, D)`` (the caption's embedding up to
its last token; the rest of the padded sequence is zero), and in its metadata (``datakit``,
JSON): clip frames, HR size, the crop, the window starts per ``F`` and the padded text length.
The writing is :func:`write_cache_shard`, the only writer; :class:`LatentCache` reads.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import fsio
from .config import TrainConfig
from .data import (DataError, Entry, Plan, build_index, crop_span, decode_window, load_references,
                   read_members, reference_members, to_video, upscale_bilinear)

log = logging.getLogger("datakit.train")

CACHE_FORMAT = 1
CACHE_DIR = "latents"
MEMBER = "latents.safetensors"


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class CacheSpec:
    """Everything the cached values depend on; its hash names the cache folder."""
    base_model: str                 # the base model folder's name
    vae_config: str                 # sha256 of the VAE's config.json
    text_config: str                # sha256 of the text encoder's config.json and the tokenizer's config
    vae_tiling: dict | None         # the resolved tiling the VAE ran with
    frames: tuple[int, ...]         # stage lengths
    window_stride: int | None
    dtype: str
    format: int = CACHE_FORMAT

    def cache_id(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def _sha_of(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes() if p.is_file() else b"-")
    return h.hexdigest()[:16]


def spec_for(cfg: TrainConfig, device_type: str) -> CacheSpec:
    """The cache a config trains from on a device type (the VAE tiling depends on it)."""
    base = Path(cfg.base_model)
    tiling = cfg.model.tiling(device_type)
    return CacheSpec(base_model=base.name, vae_config=_sha_of(base / "vae" / "config.json"),
                     text_config=_sha_of(base / "text_encoder" / "config.json",
                                         base / "tokenizer" / "tokenizer_config.json"),
                     vae_tiling=tiling.describe() if tiling else None,
                     frames=tuple(sorted({s.frames for s in cfg.stages})),
                     window_stride=cfg.data.latent_cache.window_stride, dtype=cfg.data.latent_cache.dtype)


def window_starts(clip: int, frames: int, stride: int | None) -> list[int]:
    """Starts of the cached ``frames``-frame windows of a ``clip``-frame clip (the last one ends at its end)."""
    if clip <= frames:
        return [0]
    step = stride or max(1, frames - 1)
    starts = list(range(0, clip - frames + 1, step))
    if starts[-1] != clip - frames:
        starts.append(clip - frames)
    return starts


def cache_dir(root: str, spec: CacheSpec) -> str:
    return fsio.join(fsio.normalize(root), CACHE_DIR, spec.cache_id())


def shard_name(tar_uri: str) -> str:
    name = tar_uri.rsplit("/", 1)[-1]
    return name[:-len(".tar")] if name.endswith(".tar") else name


def root_of(shard: str, roots: list[str]) -> str:
    for r in roots:
        base = fsio.normalize(r).rstrip("/") + "/"
        if shard.startswith(base):
            return r
    raise DataError(f"{shard}: under none of the dataset roots {roots}")


def _entries_by_shard(roots: list[str]) -> dict[tuple[str, str], list[Entry]]:
    """(root, shard) -> entries of every task, in a stable order."""
    out: dict[tuple[str, str], list[Entry]] = {}
    for root in roots:
        for entries in build_index([root]).values():
            for e in entries:
                out.setdefault((root, e.shard), []).append(e)
    return {k: sorted(v, key=lambda e: e.key) for k, v in sorted(out.items())}


# ---------------------------------------------------------------------------- writing (the one writer)


def _safetensors_bytes(tensors: dict, meta: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous().cpu() for k, v in tensors.items()}, metadata={"datakit": json.dumps(meta)})


def encode_sample(wan, entry: Entry, spec: CacheSpec) -> bytes:
    """One sample's member: every cached window's HR and LR latents and the caption's embedding."""
    import torch

    dtype = getattr(torch, spec.dtype)
    data = read_members(entry, ["hr.mp4", "lr.mp4"])
    n = entry.frames
    hr = decode_window(data["hr.mp4"], 0, n) if n else None
    if hr is None or not len(hr):
        raise DataError(f"{entry.shard}: sample {entry.key} has no frame count in its manifest")
    n = len(hr)
    H, W = hr.shape[1:3]
    lr = upscale_bilinear(decode_window(data["lr.mp4"], 0, n), H, W)
    y0, ch = crop_span(H, None, 0.5)
    x0, cw = crop_span(W, None, 0.5)
    hr, lr = hr[:, y0:y0 + ch, x0:x0 + cw], lr[:, y0:y0 + ch, x0:x0 + cw]
    tensors, windows, lengths = {}, {}, {}
    for F in spec.frames:
        f = F if n >= F else 1 + 4 * ((n - 1) // 4)
        starts = window_starts(n, f, spec.window_stride)
        hr_l, lr_l = [], []
        for s in starts:      # HR and LR of a window in one VAE call, as the trainer encodes pixels
            lat = wan.encode_video(torch.cat([to_video(hr[s:s + f], wan.device), to_video(lr[s:s + f], wan.device)]))
            hr_l.append(lat[0].to(dtype))
            lr_l.append(lat[1].to(dtype))
        tensors[f"hr.{F}"], tensors[f"lr.{F}"] = torch.stack(hr_l), torch.stack(lr_l)
        windows[str(F)], lengths[str(F)] = starts, f
    emb = wan.encode_text([entry.caption])[0].float()
    nonzero = emb.abs().sum(dim=-1).nonzero()
    tokens = int(nonzero[-1]) + 1 if len(nonzero) else 0
    tensors["text"] = emb[:max(tokens, 1)].to(dtype)
    meta = {"key": entry.key, "clip_frames": n, "size": [int(H), int(W)], "crop": [y0, x0, ch, cw],
            "windows": windows, "frames": lengths, "text_tokens": tokens, "text_len": int(emb.shape[0]),
            "caption_sha256": hashlib.sha256(entry.caption.encode()).hexdigest()}
    return _safetensors_bytes(tensors, meta)


def write_cache_shard(wan, spec: CacheSpec, root: str, shard: str, entries: list[Entry]) -> dict:
    """Encode every sample of one corpus shard into its cache tar, then commit its index."""
    d = cache_dir(root, spec)
    name = shard_name(shard)
    tar_uri, index_uri = fsio.join(d, name + ".tar"), fsio.join(d, name + ".json")
    fsio.makedirs(d)
    t0 = time.perf_counter()
    index, nbytes = {}, 0
    tmp, stream = fsio.open_output_tmp(tar_uri)
    try:
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.USTAR_FORMAT) as tf:
            for e in entries:
                data = encode_sample(wan, e, spec)
                info = tarfile.TarInfo(f"{e.key}.{MEMBER}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                header = len(info.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "surrogateescape"))
                index[e.key] = [tf.offset + header, len(data)]
                tf.addfile(info, io.BytesIO(data))
                nbytes += len(data)
    finally:
        stream.close()
    fsio.commit(tmp, tar_uri)
    fsio.write_atomic(index_uri, json.dumps({"format": CACHE_FORMAT, "shard": shard, "samples": index},
                                            sort_keys=True).encode())
    return {"shard": shard, "samples": len(index), "bytes": nbytes, "seconds": round(time.perf_counter() - t0, 3)}


def _write_cache_json(cfg: TrainConfig, spec: CacheSpec, root: str) -> None:
    d = cache_dir(root, spec)
    done = [f for f in fsio.list_files(d, recursive=False) if f.endswith(".json") and not f.endswith("/cache.json")]
    samples = sum(len(json.loads(fsio.read_text(f))["samples"]) for f in done)
    doc = {"format": CACHE_FORMAT, "cache_id": spec.cache_id(), "spec": asdict(spec),
           "base_model": fsio.normalize(cfg.base_model), "shards": len(done), "samples": samples,
           "member": MEMBER, "time": time.time()}
    fsio.write_atomic(fsio.join(d, "cache.json"), json.dumps(doc, indent=2, sort_keys=True).encode())


def pending(cfg: TrainConfig, spec: CacheSpec) -> list[tuple[str, str, list[Entry]]]:
    """(root, shard, entries) of every corpus shard without a complete cache shard."""
    out = []
    for (root, shard), entries in _entries_by_shard(cfg.data.roots).items():
        if not fsio.exists(fsio.join(cache_dir(root, spec), shard_name(shard) + ".json")):
            out.append((root, shard, entries))
    return out


class _CacheWorker:
    """Ray Data actor: loads the base model once, writes the cache shards it is given."""

    def __init__(self, config: dict, device_type: str):
        from ..sdedit import load_model

        self.cfg = TrainConfig.model_validate(config)
        self.spec = spec_for(self.cfg, device_type)
        self.wan = load_model(self.cfg.base_model, device="cuda" if device_type == "cuda" else "cpu",
                              dtype="auto" if device_type == "cuda" else "float32")
        self.wan.set_vae_tiling(self.cfg.model.tiling(device_type))

    def __call__(self, batch: dict) -> dict:
        rows = []
        for job in batch["job"]:
            root, shard, entries = json.loads(job)
            rows.append(write_cache_shard(self.wan, self.spec, root, shard, [Entry(**{**e, "members": tuple(
                e["members"]), "ranges": tuple(tuple(r) for r in e.get("ranges") or ())}) for e in entries]))
        return {"status": [json.dumps(r) for r in rows]}


def build_cache(cfg: TrainConfig, workers: int = 0, device: str = "auto", progress=None) -> dict:
    """Write the cache of every dataset root of ``cfg`` (shards already cached are skipped).

    ``workers`` 0 encodes in this process; N > 0 runs N Ray actors (one GPU each when the cluster
    has GPUs), each loading the base model once. ``progress(done, total)`` after each shard.
    """
    import torch

    from ..sdedit import load_model

    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    spec = spec_for(cfg, dev.type)
    jobs = pending(cfg, spec)
    total = len(jobs)
    t0 = time.perf_counter()
    stats = []
    if jobs and workers <= 0:
        wan = load_model(cfg.base_model, device=str(dev), dtype="auto" if dev.type == "cuda" else "float32")
        wan.set_vae_tiling(cfg.model.tiling(dev.type))
        for k, (root, shard, entries) in enumerate(jobs):
            stats.append(write_cache_shard(wan, spec, root, shard, entries))
            if progress:
                progress(k + 1, total)
    elif jobs:
        import ray

        from ..rayinit import init_ray

        init_ray(cfg.distributed.address, cfg.distributed.num_cpus)
        gpus = ray.cluster_resources().get("GPU", 0)
        items = [{"job": json.dumps([root, shard, [asdict(e) for e in entries]])} for root, shard, entries in jobs]
        ds = ray.data.from_items(items).map_batches(
            _CacheWorker, fn_constructor_kwargs={"config": cfg.model_dump(mode="json"),
                                                 "device_type": "cuda" if gpus else "cpu"},
            batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_gpus=1 if gpus else 0)
        for k, row in enumerate(ds.iter_rows()):
            stats.append(json.loads(row["status"]))
            if progress:
                progress(k + 1, total)
    for root in cfg.data.roots:
        fsio.makedirs(cache_dir(root, spec))
        _write_cache_json(cfg, spec, root)
    return {"cache_id": spec.cache_id(), "shards_written": len(stats), "shards_total": len(_entries_by_shard(
        cfg.data.roots)), "samples": sum(s["samples"] for s in stats), "bytes": sum(s["bytes"] for s in stats),
            "wall_s": round(time.perf_counter() - t0, 2), "dirs": [cache_dir(r, spec) for r in cfg.data.roots]}


# ---------------------------------------------------------------------------- reading


def _split_safetensors(data: bytes) -> tuple[dict, dict]:
    """(tensors, datakit metadata) of one member."""
    from safetensors.torch import load

    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = json.loads((header.get("__metadata__") or {}).get("datakit", "{}"))
    return load(data), meta


class LatentCache:
    """Prepares training items from the cache (``load_item(plan)``), for a config on a device type."""

    def __init__(self, cfg: TrainConfig, device_type: str):
        self.cfg, self.spec = cfg, spec_for(cfg, device_type)
        self.roots = list(cfg.data.roots)
        for root in self.roots:
            d = cache_dir(root, self.spec)
            if not fsio.exists(fsio.join(d, "cache.json")):
                raise DataError(f"{root}: no latent cache for this config ({d} is missing); write it with "
                                "`datakit cache-latents CONFIG.yaml` (the same config and --set values)")
        self._index: dict[str, dict] = {}

    def _where(self, e: Entry) -> tuple[str, list[int]]:
        if e.shard not in self._index:
            d = cache_dir(root_of(e.shard, self.roots), self.spec)
            uri = fsio.join(d, shard_name(e.shard) + ".json")
            if not fsio.exists(uri):
                raise DataError(f"{e.shard}: not in the latent cache {d}; rerun `datakit cache-latents` (it adds "
                                "the shards written since)")
            self._index[e.shard] = {"tar": fsio.join(d, shard_name(e.shard) + ".tar"),
                                    "samples": json.loads(fsio.read_text(uri))["samples"]}
        ix = self._index[e.shard]
        if e.key not in ix["samples"]:
            raise DataError(f"{ix['tar']}: no cached sample {e.key}")
        return ix["tar"], ix["samples"][e.key]

    def read(self, e: Entry) -> tuple[dict, dict]:
        """(tensors, metadata) of one cached sample."""
        tar, (off, size) = self._where(e)
        fs, path = fsio.resolve(tar)
        with fs.open_input_file(path) as f:
            f.seek(off)
            data = f.read(size)
        if len(data) != size:
            raise DataError(f"{tar}: cached sample {e.key} is cut short; delete {tar} and its .json and rerun "
                            "`datakit cache-latents`")
        return _split_safetensors(data)

    def load_item(self, plan: Plan) -> dict:
        """The planned item with latents instead of HR/LR pixels (references still as pixels)."""
        import torch

        e = plan.entry
        tensors, meta = self.read(e)
        F = str(plan.frames)
        if F not in meta["windows"]:
            raise DataError(f"the latent cache of {e.shard} has no {plan.frames}-frame windows (it has "
                            f"{sorted(meta['windows'])}); rerun `datakit cache-latents` with this config")
        starts = meta["windows"][F]
        k = min(int(plan.window * len(starts)), len(starts) - 1)
        y0, x0, ch, cw = meta["crop"]
        text = None
        if not plan.drop_text:
            t = tensors["text"].float()
            text = torch.zeros(meta["text_len"], t.shape[1])
            text[:len(t)] = t
        item = {"index": plan.index, "stage": plan.stage, "key": e.key, "task": e.task, "fps": e.fps,
                "caption": "" if plan.drop_text else e.caption, "text_dropped": plan.drop_text,
                "frame_start": starts[k], "crop": (y0, x0, ch, cw), "hr_latent": tensors[f"hr.{F}"][k].float(),
                "lr_latent": tensors[f"lr.{F}"][k].float(), "text_embedding": text}
        names = reference_members(plan)
        data = read_members(e, names) if names else {}
        item.update(load_references(plan, self.cfg, data, starts[k], meta["frames"][F], meta["clip_frames"],
                                    tuple(meta["size"]), (y0, x0, ch, cw)))
        return item

