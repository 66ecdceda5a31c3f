"""The `birthlens` command: a thin shell over datasets, models, probes and reports.

Each subcommand lives in ``birthlens/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from birthlens import __version__
from birthlens.errors import BirthlensError

# Order here is the order in `birthlens --help`.
COMMANDS = ("train", "probe", "ablate", "patch", "report", "demo", "experiment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birthlens",
        description="Train the 'Birth of a Transformer' toy model, watch its induction head "
        "form, and probe any HookedTransformer (toy checkpoints, SmolLM2, TransformerLens models).",
    )
    parser.add_argument("--version", action="version", version=f"birthlens {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"birthlens.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"birthlens.commands.{name}":
                raise
            continue  # command not built yet
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BirthlensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
