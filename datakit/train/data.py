"""Training data from datakit shards: an index, a step-indexed sampler and a loader.

* **Index** — the Parquet manifests of every dataset root give each sample's shard, key,
  task, frame count and members with their byte ranges in the tar (read through
  :mod:`datakit.output.reader`); nothing is decoded to build it, and a loader reads a
  member with one range read, checked against its sha256.
* **Who reads what** — for each task, its shards are dealt round-robin to the training
  workers (ranks), and a rank's shards round-robin to its loader groups. Loader process ``w``
  of a run that starts at item ``i0`` serves the items ``i ≡ i0 + w (mod W)`` and reads only
  group ``(i0 + w) mod W``; so item ``i`` always comes from group ``i mod W`` and a resumed
  run sees the items an uninterrupted one would. When a task has fewer shards than workers
  or groups, they share that task's shards (logged once).
* **Sampler** — item ``i`` of rank ``r`` is planned by a generator seeded with
  ``(seed, r, i)``: its task (from the stage mixture of the optimizer step it belongs to),
  the sample (uniform within the group's pool of that task, with replacement), the frame
  window, crops, the 10 % null prompt, the reference augmentation seed and the edit shift.
  No state is carried between items, so resume needs only the item counter.
* **Loading an item** — decode the HR and LR windows, upscale the LR bilinearly to the HR size
  in pixels, crop to a multiple of 16 (or the configured crop), ID images augmented (Table 3)
  and zero-padded to the crop size, the edit reference video shifted in time and cropped
  with the HR. Items are uint8 arrays; VAE and text encoding happen on the training device
  (:func:`encode_item`).
"""
from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from torch.utils.data import IterableDataset

from ..output.errors import OutputError
from ..output.reader import RangeReader, open_output
from .config import TASKS, TrainConfig
from .control import ignore_sigint

log = logging.getLogger("datakit.train")

SPATIAL_MULTIPLE = 16          # Wan: VAE x8, patch x2
LOADER_TAG, TRAINER_TAG = 0x10AD, 0x7EA1


class DataError(RuntimeError):
    """The dataset roots cannot feed this config (no samples of a task it samples, ...)."""


# ---------------------------------------------------------------------------- index

@dataclass(frozen=True)
class Entry:
    shard: str                 # tar URI
    key: str
    task: str
    frames: int
    members: tuple[str, ...]
    caption: str
    fps: float
    ranges: tuple = ()         # (name, offset, size, sha256) of each member, from the manifest


def build_index(roots: list[str]) -> dict[str, list[Entry]]:
    """task -> entries of every committed batch under ``roots``, in a stable order.

    Several builds of one clip index may keep the same clip (same key, same media bytes): it
    is used once, from the first root that has it."""
    out: dict[str, list[Entry]] = {t: [] for t in TASKS}
    cols = ["key", "task", "num_frames", "hr", "fps", "caption", "shard", "members"]
    seen: set[tuple] = set()
    repeated = 0
    for root in roots:
        try:
            output = open_output(root)
        except OutputError as e:
            raise DataError(str(e)) from None
        if output.kind == "curate":
            raise DataError(f"{output.root} is a clip index (datakit curate), it holds no samples: train on a "
                            f"build of it (datakit build SPEC --index {output.root} --output OUT)")
        if not output.batches():
            raise DataError(f"{output.root}: no committed batches (no manifests/*.parquet); "
                            "finish its `datakit run` first")
        for row in output.manifest_rows(cols):
            task = row.get("task") or "t2v"
            if task not in out:
                continue
            members = row.get("members") or []
            # the same clip kept by two builds: same key and the same media (its json differs)
            same = (row["key"], tuple(sorted((m["name"], m["sha256"]) for m in members if m["name"] != "json")))
            if same in seen:
                repeated += 1
                continue
            seen.add(same)
            frames = int(row.get("num_frames") or (row.get("hr") or {}).get("frames") or 0)
            out[task].append(Entry(output.tar_uri(row["shard"]), row["key"], task, frames,
                                   tuple(m["name"] for m in members), row.get("caption") or "",
                                   float(row.get("fps") or 24.0),
                                   tuple((m["name"], m["offset"], m["size"], m["sha256"]) for m in members)))
    if repeated:
        log.info("%d samples are in more than one root (the same clip kept by several builds): each is used once",
                 repeated)
    for t in out:
        out[t].sort(key=lambda e: (e.shard, e.key))
    return out


def partition(entries: list[Entry], part: int, parts: int) -> tuple[list[Entry], bool]:
    """The entries of shards ``part::parts`` (by sorted shard URI); (all, True) if too few shards."""
    shards = sorted({e.shard for e in entries})
    if parts <= 1:
        return entries, False
    if len(shards) < parts:
        return entries, True
    mine = set(shards[part::parts])
    return [e for e in entries if e.shard in mine], False


def read_members(entry: Entry, names: list[str]) -> dict[str, bytes]:
    """Members of a sample by range from its tar, each checked against its sha256."""
    ranges = {r[0]: {"name": r[0], "offset": r[1], "size": r[2], "sha256": r[3]} for r in entry.ranges}
    for n in names:
        if n not in ranges:
            raise DataError(f"{entry.shard}: sample {entry.key} has no member {n!r}")
    try:
        with RangeReader(entry.shard) as rr:
            return {n: rr.read(entry.key, ranges[n]) for n in names}
    except OutputError as e:
        raise DataError(str(e)) from None


# ---------------------------------------------------------------------------- sampler

@dataclass
class Plan:
    """Everything random about one item, drawn from (seed, rank, index) alone."""
    index: int
    stage: int
    frames: int
    task: str
    entry: Entry
    drop_text: bool
    drop_refs: bool
    window: float              # position of the frame window in the clip, [0, 1)
    crop_y: float
    crop_x: float
    edit_shift: int
    aug_seed: int


def item_rng(seed: int, rank: int, index: int, tag: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(rank), int(index), int(tag)])


class Sampler:
    """Plans items for one rank; ``plan(i)`` depends on nothing but the config and ``i``."""

    def __init__(self, cfg: TrainConfig, index: dict[str, list[Entry]], rank: int = 0, world: int = 1,
                 groups: int = 1):
        self.cfg, self.rank, self.world, self.groups = cfg, rank, world, max(1, groups)
        needed = {t for s in cfg.stages for t, p in s.tasks.items() if p > 0}
        for t in sorted(needed):
            if not index.get(t):
                stages = [s.name for s in cfg.stages if s.tasks.get(t, 0) > 0]
                raise DataError(f"stage(s) {', '.join(stages)} sample task {t!r} but no dataset root holds "
                                f"{t} samples (roots: {', '.join(cfg.data.roots)})")
        # pools[task][group]
        self.pools: dict[str, list[list[Entry]]] = {}
        self.shared: list[str] = []
        for t in sorted(needed):
            mine, shared_r = partition(index[t], rank, world)
            self.pools[t] = []
            for g in range(self.groups):
                pool, shared_g = partition(mine, g, self.groups)
                self.pools[t].append(pool)
                if (shared_r or shared_g) and t not in self.shared:
                    self.shared.append(t)

    def group_of(self, index: int) -> int:
        return index % self.groups

    def plan(self, index: int) -> Plan:
        cfg = self.cfg
        step = index // cfg.optim.grad_accum
        si, stage = cfg.stage_at(step)
        rng = item_rng(cfg.seed, self.rank, index, LOADER_TAG)
        tasks = [t for t in TASKS if stage.tasks.get(t, 0) > 0]
        p = np.array([stage.tasks[t] for t in tasks], dtype=np.float64)
        task = tasks[int(rng.choice(len(tasks), p=p / p.sum()))]
        pool = self.pools[task][self.group_of(index)]
        entry = pool[int(rng.integers(len(pool)))]
        ob = cfg.objective
        return Plan(index=index, stage=si, frames=stage.frames, task=task, entry=entry,
                    drop_text=bool(rng.random() < ob.null_prompt_prob),
                    drop_refs=bool(rng.random() < ob.ref_drop_prob),
                    window=float(rng.random()), crop_y=float(rng.random()), crop_x=float(rng.random()),
                    edit_shift=int(rng.integers(-cfg.augment.edit_shift, cfg.augment.edit_shift + 1)),
                    aug_seed=int(rng.integers(2 ** 31 - 1)))


# ---------------------------------------------------------------------------- decoding

def decode_window(data: bytes, start: int, count: int) -> np.ndarray:
    """Frames ``start .. start+count-1`` of an in-memory video as ``(T, H, W, 3)`` uint8 (stops early)."""
    import av

    out = []
    with av.open(io.BytesIO(data), mode="r") as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i >= start + count:
                break
            if i >= start:
                out.append(fr.to_ndarray(format="rgb24"))
    if not out:
        raise DataError(f"no frames in window {start}..{start + count - 1}")
    while len(out) < count:                     # a short stream: hold the last frame
        out.append(out[-1])
    return np.stack(out)


def upscale_bilinear(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(T, h, w, 3)`` uint8 -> ``(T, height, width, 3)`` uint8, bilinear (half-pixel centres, no antialias)."""
    import torch
    import torch.nn.functional as F

    if frames.shape[1:3] == (height, width):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def pad_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fit an ``(H, W, 3)`` image inside ``height x width`` (shrunk if larger) and zero-pad it, centred."""
    import cv2

    h, w = img.shape[:2]
    s = min(1.0, height / h, width / w)
    if s < 1.0:
        img = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
    out = np.zeros((height, width, 3), np.uint8)
    y0, x0 = (height - h) // 2, (width - w) // 2
    out[y0:y0 + h, x0:x0 + w] = img
    return out


def shear_degrees(height: int, width: int, frac: float) -> tuple[float, float]:
    """Table 3's pixel shear as albumentations ``Affine`` angles (x, y) in degrees.

    albumentations shears with ``x' = x + tan(θx)·y`` and ``y' = y + tan(θy)·x`` (about the image
    centre), so an x shear of ``θx`` offsets the top edge against the bottom edge by ``tan(θx)·h``
    pixels and a y shear offsets the left edge against the right by ``tan(θy)·w``. Table 3 gives
    those offsets as ``frac·w`` and ``frac·h``: ``θx = atan(frac·w/h)``, ``θy = atan(frac·h/w)``
    (both ``atan(0.05) = 2.862°`` for a square image). albumentations draws the angle uniformly
    in ``[-θ, θ]``, not the offset; for the offsets of Table 3 (``tan θ ≤ 0.05·aspect``) the two
    differ by well under 1 %.
    """
    tx = math.degrees(math.atan(frac * width / height))
    ty = math.degrees(math.atan(frac * height / width))
    return tx, ty


def reference_augmentation(cfg, height: int, width: int, seed: int):
    """Table 3 as albumentations transforms for one ``height x width`` image (seeded)."""
    import albumentations as A

    sx, sy = shear_degrees(height, width, cfg.shear_frac)
    return A.Compose([
        A.MultiplicativeNoise(multiplier=tuple(cfg.brightness), per_channel=False, elementwise=False, p=1.0),
        A.HorizontalFlip(p=cfg.hflip_p),
        A.Affine(shear={"x": (-sx, sx), "y": (-sy, sy)}, rotate=(-cfg.rotate_deg, cfg.rotate_deg), fill=0,
                 p=1.0),
        A.RandomResizedCrop(size=(height, width), scale=tuple(cfg.crop_scale), ratio=(width / height, width / height),
                            p=cfg.crop_p),
    ], seed=seed)


def augment_image(img: np.ndarray, cfg, seed: int) -> np.ndarray:
    h, w = img.shape[:2]
    return reference_augmentation(cfg, h, w, seed)(image=img)["image"]


def crop_span(size: int, want: int | None, u: float) -> tuple[int, int]:
    """(start, length) along one side: ``want`` pixels (all if None) cut to a multiple of 16, placed at
    ``u`` in [0, 1) of the room left."""
    n = min(size, want or size)
    n -= n % SPATIAL_MULTIPLE
    if n <= 0:
        raise DataError(f"frame side {size} is below {SPATIAL_MULTIPLE} pixels")
    return int(u * (size - n + 1)) if size > n else 0, n


def _decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def clip_frames(plan: Plan) -> tuple[int, int]:
    """(frames of the item, frames of the clip): the stage's count, cut to 4k+1 for short clips."""
    e = plan.entry
    frames = plan.frames
    if e.frames and e.frames < frames:
        frames = 1 + 4 * ((e.frames - 1) // 4)
        _warn_once(f"short:{e.frames}:{plan.frames}",
                   f"clips of {e.frames} frames are shorter than the stage's {plan.frames}: using {frames}")
    return frames, e.frames or frames


def reference_members(plan: Plan) -> list[str]:
    """The members holding the planned item's references (none when they are dropped)."""
    e = plan.entry
    if plan.drop_refs:
        return []
    if e.task == "mi2v":
        return sorted(n for n in e.members if n.startswith("ref_") and n.endswith(".png"))
    if e.task == "edit" and "ref.mp4" in e.members:
        return ["ref.mp4"]
    return []


def crop_box(size: tuple[int, int], cfg: TrainConfig, plan: Plan) -> tuple[int, int, int, int]:
    """(y0, x0, height, width) of the planned crop of an HR frame of ``size`` (H, W)."""
    want = cfg.data.crop
    y0, ch = crop_span(size[0], want[0] if want else None, plan.crop_y)
    x0, cw = crop_span(size[1], want[1] if want else None, plan.crop_x)
    return y0, x0, ch, cw


def load_references(plan: Plan, cfg: TrainConfig, data: dict[str, bytes], start: int, frames: int, clip: int,
                    size: tuple[int, int], box: tuple[int, int, int, int]) -> dict:
    """ID images (augmented per item, Table 3, zero-padded to the crop) and the edit reference video
    (shifted per item, cut like the HR), from the members in ``data``."""
    y0, x0, ch, cw = box
    out = {}
    images = sorted(n for n in data if n.startswith("ref_") and n.endswith(".png"))
    max_images = cfg.data.max_images or (cfg.model.rope.video - cfg.model.rope.images)
    if images:
        imgs = []
        for j, name in enumerate(images[:max_images]):
            img = _decode_png(data[name])
            if cfg.augment.enabled:
                img = augment_image(img, cfg.augment, plan.aug_seed + j)
            imgs.append(pad_to(img, ch, cw))
        out["images"] = np.stack(imgs)
    if "ref.mp4" in data:
        full = decode_window(data["ref.mp4"], 0, clip)
        shift = plan.edit_shift if cfg.augment.enabled else 0
        idx = np.clip(np.arange(start, start + frames) + shift, 0, len(full) - 1)
        ref = full[idx]
        if ref.shape[1:3] != tuple(size):
            ref = upscale_bilinear(ref, *size)
        out["video"] = np.ascontiguousarray(ref[:, y0:y0 + ch, x0:x0 + cw])
        out["ref_shift"] = shift
    return out


def load_item(plan: Plan, cfg: TrainConfig, start: int | None = None, origin: tuple[int, int] | None = None) -> dict:
    """Decode and prepare one planned item (uint8 arrays, HR size after cropping).

    ``start`` and ``origin`` (y0, x0 of the crop) replace the planned frame window and crop
    position (the latent cache's fixed windows are compared with pixels this way).
    """
    e = plan.entry
    data = read_members(e, ["hr.mp4", "lr.mp4", *reference_members(plan)])
    frames, n = clip_frames(plan)
    if start is None:
        start = int(plan.window * (n - frames + 1)) if n > frames else 0
    hr = decode_window(data["hr.mp4"], start, frames)
    H, W = hr.shape[1:3]
    lr = upscale_bilinear(decode_window(data["lr.mp4"], start, frames), H, W)
    y0, x0, ch, cw = crop_box((H, W), cfg, plan)
    if origin is not None:
        y0, x0 = origin
    crop = (slice(None), slice(y0, y0 + ch), slice(x0, x0 + cw))
    item = {"index": plan.index, "stage": plan.stage, "key": e.key, "task": e.task, "fps": e.fps,
            "caption": "" if plan.drop_text else e.caption, "text_dropped": plan.drop_text,
            "frame_start": start, "crop": (y0, x0, ch, cw),
            "hr": np.ascontiguousarray(hr[crop]), "lr": np.ascontiguousarray(lr[crop])}
    item.update(load_references(plan, cfg, data, start, frames, n, (H, W), (y0, x0, ch, cw)))
    return item


_WARNED: set[str] = set()


def _warn_once(key: str, msg: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(msg)


# ---------------------------------------------------------------------------- the loader

class ItemStream:
    """Iterable over prepared items ``start, start+1, ...`` for one rank (a torch IterableDataset)."""

    def __init__(self, cfg: TrainConfig, index: dict[str, list[Entry]], rank: int, world: int, start: int,
                 groups: int, stop: int | None = None, source=None):
        self.cfg, self.index, self.rank, self.world = cfg, index, rank, world
        self.start, self.groups, self.stop = start, max(1, groups), stop
        self.source = source     # an object whose load_item(plan) prepares items (the latent cache), or None

    def __iter__(self) -> Iterator[dict]:
        import torch.utils.data as tud

        info = tud.get_worker_info()
        w, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        if nw != self.groups:
            raise RuntimeError(f"loader built for {self.groups} groups runs with {nw} processes")
        sampler = Sampler(self.cfg, self.index, self.rank, self.world, self.groups)
        if sampler.shared and w == 0 and self.rank == 0:
            log.info("tasks with fewer shards than readers (shared): %s", ", ".join(sampler.shared))
        i = self.start + w
        while self.stop is None or i < self.stop:
            plan = sampler.plan(i)
            yield self.source.load_item(plan) if self.source is not None else load_item(plan, self.cfg)
            i += nw


def make_loader(cfg: TrainConfig, index: dict[str, list[Entry]], rank: int = 0, world: int = 1, start: int = 0,
                stop: int | None = None, workers: int | None = None, pin_memory: bool = False, source=None):
    """A torch DataLoader yielding one item (a dict of tensors) per micro-step, from item ``start``.

    ``source``: prepares items instead of :func:`load_item` (``source.load_item(plan)``; the latent cache).
    """
    import torch.utils.data as tud

    workers = cfg.data.workers if workers is None else workers
    groups = max(1, workers)
    stream = _TorchStream(ItemStream(cfg, index, rank, world, start, groups, stop, source))
    kwargs = {}
    if workers > 0:
        kwargs = dict(num_workers=workers, prefetch_factor=cfg.data.prefetch, persistent_workers=False,
                      multiprocessing_context="fork" if _fork_ok() else None, worker_init_fn=ignore_sigint)
    return tud.DataLoader(stream, batch_size=None, pin_memory=pin_memory, **kwargs)


def _fork_ok() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()


class _TorchStream(IterableDataset):
    def __init__(self, inner: ItemStream):
        super().__init__()
        self.inner = inner

    def __iter__(self):
        return iter(self.inner)


# ---------------------------------------------------------------------------- to latents

@dataclass
class Encoded:
    """An item on the training device: latents and text, what the objective needs."""
    hr: "torch.Tensor"                  # (1, z, f, h, w) normalised latents  # noqa: F821
    lr: "torch.Tensor"                  # (1, z, f, h, w)  # noqa: F821
    text: "torch.Tensor"                # (1, L, text_dim)  # noqa: F821
    refs: list = field(default_factory=list)   # [(kind, latent)]
    index: int = 0
    task: str = "t2v"
    key: str = ""


def to_video(frames, device) -> "torch.Tensor":  # noqa: F821
    """uint8 ``(T, H, W, 3)`` (array or tensor) -> float ``(1, 3, T, H, W)`` in [-1, 1]."""
    import torch

    t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
    return (t.to(device).permute(3, 0, 1, 2).unsqueeze(0).float() / 127.5 - 1.0)


def encode_references(wan, images=None, video=None, device=None) -> list:
    """[(kind, latent)] for ID images ``(n, H, W, 3)`` and a reference video ``(T, H, W, 3)`` (uint8)."""
    import torch

    device = device or wan.device
    refs = []
    if images is not None and len(images):
        x = torch.cat([to_video(img[None], device) for img in images], dim=0)   # (n, 3, 1, H, W)
        lat = wan.encode_video(x).clone()                                          # (n, z, 1, h, w)
        refs.append(("images", lat.permute(1, 2, 0, 3, 4).flatten(1, 2).unsqueeze(0)))
    if video is not None:
        refs.append(("video", wan.encode_video(to_video(video, device)).clone()))
    return refs


class TextCache:
    """Prompt embeddings by caption, least recently used dropped past ``size`` (the null prompt stays)."""

    def __init__(self, wan, size: int = 256):
        from collections import OrderedDict

        self.wan, self.size, self.entries = wan, size, OrderedDict()
        self.null = None

    def __call__(self, caption: str):
        if caption == "":
            if self.null is None:
                self.null = self.wan.encode_text([""]).clone().float()
            return self.null
        if caption in self.entries:
            self.entries.move_to_end(caption)
            return self.entries[caption]
        emb = self.wan.encode_text([caption]).clone().float()
        self.entries[caption] = emb
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return emb


def encode_item(wan, item: dict, device=None, text: TextCache | None = None) -> Encoded:
    """VAE-encode HR, upscaled LR and references (one batched VAE call for the equal-shaped videos);
    encode the caption (the null prompt is the encoding of '').

    An item from the latent cache brings HR and LR latents and the caption's embedding
    (``hr_latent``, ``lr_latent``, ``text_embedding``; None when the prompt is dropped): only
    its references, augmented per item, go through the VAE.
    """
    import torch

    device = device or wan.device
    text = text or TextCache(wan, 0)
    idx = item["index"]
    idx = int(idx.item()) if hasattr(idx, "item") else int(idx)
    if "hr_latent" in item:
        emb = item.get("text_embedding")
        emb = text("") if emb is None or item.get("text_dropped") else _as_tensor(emb).to(device).float()[None]
        return Encoded(hr=_as_tensor(item["hr_latent"]).to(device).float()[None],
                       lr=_as_tensor(item["lr_latent"]).to(device).float()[None], text=emb,
                       refs=encode_references(wan, item.get("images"), item.get("video"), device),
                       index=idx, task=item["task"], key=item["key"])
    videos = [to_video(item["hr"], device), to_video(item["lr"], device)]
    has_video = item.get("video") is not None
    if has_video:
        videos.append(to_video(item["video"], device))
    lat = wan.encode_video(torch.cat(videos, dim=0)).clone()
    refs = encode_references(wan, item.get("images"), None, device)
    if has_video:
        refs.append(("video", lat[2:3]))
    return Encoded(hr=lat[0:1], lr=lat[1:2], text=text(item["caption"]), refs=refs, index=idx, task=item["task"],
                   key=item["key"])


def _as_tensor(x):
    import torch

    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
