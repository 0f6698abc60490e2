"""The ``datakit`` command line: one verb per job (the verbs live in ``datakit/commands/``)."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .commands import clip, corpus, models, reproduce, training  # noqa: E402

#: verb families, in the order ``datakit --help`` lists them
FAMILIES = (corpus, reproduce, clip, models, training)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="datakit",
        description="Build UniMMVSR training corpora (LR-HR-reference triples as WebDataset shards) with Ray.")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for family in FAMILIES:
        family.register(sub)
    for verb in sub.choices.values():    # `datakit VERB ... -v` as well as `datakit -v VERB ...`
        if not any("-v" in a.option_strings for a in verb._actions):
            verb.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                              help="log debug messages; show Ray's own log lines and warnings")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:          # the command itself (not a caller passing arguments): its stderr is datakit's
        from .console import claim_stderr

        claim_stderr()
    level = logging.DEBUG if args.verbose else logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    # datakit's own messages at `level`; other libraries' only when they warn (or with -v)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("datakit").setLevel(level)
    # bitsandbytes (pulled in by pyiqa) warns at every import about optional kernels datakit never uses
    logging.getLogger("bitsandbytes").setLevel(logging.INFO if args.verbose else logging.ERROR)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return interrupted(args)


def interrupted(args) -> int:
    """Ctrl-C: no traceback, one line, exit 130, and no Ray process left behind.

    A verb that keeps work (``run``) says what was kept through ``args.on_interrupt``. With
    Ray running in this process, its threads may still be at work; shutting Ray down under
    them can end the process on its own terms, so the local Ray processes are stopped
    directly and the process ends here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # a second Ctrl-C must not cut this short
    from .console import restore_stderr

    restore_stderr()
    said = getattr(args, "on_interrupt", None)
    try:
        said = said() if said else None
    except Exception:  # noqa: BLE001 - the message must not fail
        said = None
    print(f"\ndatakit {args.verb}: interrupted" + (f"; {said}" if said else ""), file=sys.stderr, flush=True)
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        from .rayinit import abandon

        abandon()
        sys.stdout.flush()
        os._exit(130)
    return 130


if __name__ == "__main__":
    sys.exit(main())
