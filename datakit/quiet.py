"""Library noise that tells a datakit user nothing, silenced where datakit imports the libraries.

- bitsandbytes (installed with pyiqa) logs at import, on every CPU-only machine, that it could
  not load optional kernels from the ``kernels`` package; diffusers and transformers import it
  whenever they are imported. datakit never quantises, so the warning is noise.
- transformers draws a "Writing model shards" / "Loading weights" bar for every tiny model it
  saves or loads; datakit prints its own line per model.

Call :func:`model_libraries` before importing diffusers / transformers; it is idempotent and
changes only those loggers (errors still show).
"""
from __future__ import annotations

import logging

_done = False


def model_libraries(progress_bars: bool = False) -> None:
    """Quiet bitsandbytes' import-time warning; turn transformers' and diffusers' per-file progress
    bars off unless ``progress_bars``."""
    global _done
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    if _done:
        return
    _done = True
    if not progress_bars:
        try:
            from transformers.utils import logging as tlog

            tlog.disable_progress_bar()
        except ImportError:
            pass
        try:
            from diffusers.utils import logging as dlog

            dlog.disable_progress_bar()
        except ImportError:
            pass
