"""How many clips fit in memory: batch sizes from a budget, a clear refusal when one clip
cannot fit, and out-of-memory errors recognised.

The planner is a pure function of numbers (:func:`plan_batch`); what a call needs comes from
the backend (:meth:`VideoDiffusionModel.memory_need`) as a :class:`MemoryNeed` — bytes needed
once per call whatever the batch (one clip at a time through the VAE) plus bytes per clip of
the batch (transformer activations, latents, the clip's video tensors). The budget is what the
device has free beyond what is already held (the loaded weights), or a configured number.

Estimates are estimates: :class:`~datakit.sdedit.editor.SDEditor` also catches an
out-of-memory error of a batch, halves the batch and remembers the smaller size, and rejects a
clip that does not fit alone — the error never leaves the stage, so Ray never retries the task
into the same error.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass

GiB = 1024 ** 3


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes one call of ``n`` clips needs: ``fixed + n · per_clip``."""
    fixed: int
    per_clip: int
    detail: tuple[tuple[str, int], ...] = ()     # named parts, for messages and benchmarks

    def total(self, n: int) -> int:
        return int(self.fixed + n * self.per_clip)


class DoesNotFit(RuntimeError):
    """One clip needs more memory than the budget; the message names both and what to change."""

    def __init__(self, message: str, need: int = 0, budget: int = 0):
        super().__init__(message)
        self.need, self.budget = need, budget


def plan_batch(need: MemoryNeed, budget: int | None, limit: int) -> int:
    """The largest ``n <= limit`` with ``need.total(n) <= budget`` (``limit`` when there is no
    budget); 0 when not even one clip fits."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if budget is None:
        return limit
    if need.per_clip <= 0:
        return limit if need.fixed <= budget else 0
    return max(0, min(limit, (budget - need.fixed) // need.per_clip))


def size(n: int | float) -> str:
    """Bytes for people: ``12.3 GiB``, ``45.6 MiB``, ``7.8 KiB``."""
    for unit, scale in (("GiB", GiB), ("MiB", 1 << 20)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1024:.1f} KiB"


def refusal(what: str, need: MemoryNeed, budget: int, configured: bool, device, advice: str) -> str:
    """One line: what needs how much, what is free where (or what the budget is), and what to change."""
    have = (f"the configured budget (memory_budget_gb) is {size(budget)}" if configured
            else f"{size(budget)} is free on {device}")
    return (f"{what} needs about {size(need.total(1))} ({', '.join(f'{k} {size(v)}' for k, v in need.detail)}) "
            f"but {have}; {advice}")


def is_oom(e: BaseException) -> bool:
    """True for an allocation failure: CUDA's ``torch.OutOfMemoryError`` or the CPU allocator's."""
    try:
        import torch

        if isinstance(e, torch.OutOfMemoryError):
            return True
    except ImportError:   # pragma: no cover - torch is there whenever a model runs
        pass
    msg = str(e)
    return isinstance(e, (RuntimeError, MemoryError)) and (
        isinstance(e, MemoryError) or "out of memory" in msg.lower() or "can't allocate memory" in msg
        or "not enough memory" in msg)


def release(device) -> None:
    """Return cached blocks after an allocation failure (the failed call's tensors are gone)."""
    gc.collect()
    if getattr(device, "type", str(device)).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def available(device, budget_gb: float | None = None, headroom: float = 0.1) -> int | None:
    """Bytes a stage may use on ``device`` beyond what it already holds.

    ``budget_gb`` (configured) wins. CUDA: free device memory plus the caching allocator's
    reserved-but-unused blocks, less ``headroom`` of the free part (fragmentation, other
    processes). CPU: the memory the OS reports available, less the same headroom.
    """
    if budget_gb is not None:
        return int(budget_gb * GiB)
    kind = getattr(device, "type", str(device))
    if kind.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free * (1 - headroom) + cached)
    if kind == "cpu":
        import psutil

        return int(psutil.virtual_memory().available * (1 - headroom))
    return None
