"""The ``datakit`` command line: one verb per job (the verbs live in ``datakit/commands/``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .commands import clip, corpus, models, training  # noqa: E402

#: verb families, in the order ``datakit --help`` lists them
FAMILIES = (corpus, clip, models, training)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="datakit",
        description="Build UniMMVSR training corpora (LR-HR-reference triples as WebDataset shards) with Ray.")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for family in FAMILIES:
        family.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
