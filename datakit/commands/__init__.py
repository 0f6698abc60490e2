"""The verbs of the ``datakit`` command, one module per family; ``datakit.cli`` assembles them."""
from __future__ import annotations

import sys

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    """Print a one-line reason and return the exit code."""
    print(f"datakit: error: {msg}", file=sys.stderr)
    return code
