"""The ``insole`` command line.

Each subcommand lives in the module that does the work; that module exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit status. This file only wires them together and turns every
:class:`~insole.errors.InsoleError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from insole import __version__
from insole.errors import InsoleError

# Each module adds its own subcommand.
_COMMAND_MODULES = (
    "insole.cli.sim",
    "insole.cli.record",
    "insole.cli.export",
    "insole.cli.analyse",
    "insole.cli.convert",
    "insole.cli.score",
    "insole.cli.calibrate",
    "insole.cli.command",
    "insole.cli.history",
    "insole.cli.report",
    "insole.cli.live",
    "insole.cli.ble",
    "insole.cli.pair",
    "insole.cli.unpair",
    "insole.cli.compare",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="insole",
        description="Record, simulate and analyse the open running insole's pressure stream.")
    parser.add_argument("--version", action="version", version=f"insole {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InsoleError as e:
        print(f"insole {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"insole {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
