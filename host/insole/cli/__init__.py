"""The ``insole`` command line.

Each subcommand lives in its own module under ``insole.cli``; that module exposes
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

# Each module adds its own subcommands: the names it registers, so that a command line imports
# only its own command's module (the others pull in the simulator, BLE and figures: about 0.2 s).
# tests/test_cli_errors.py checks these names against what each module registers.
_COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "insole.cli.sim": ("sim",),
    "insole.cli.record": ("record",),
    "insole.cli.export": ("export",),
    "insole.cli.analyse": ("analyse", "analyze"),
    "insole.cli.convert": ("convert",),
    "insole.cli.score": ("score",),
    "insole.cli.calibrate": ("calibrate", "calibrate-bench"),
    "insole.cli.command": ("command",),
    "insole.cli.history": ("history",),
    "insole.cli.report": ("report",),
    "insole.cli.live": ("live",),
    "insole.cli.ble": ("scan", "info"),
    "insole.cli.pair": ("pair",),
    "insole.cli.unpair": ("unpair",),
    "insole.cli.compare": ("compare",),
}


def _command_of(argv: list[str]) -> str | None:
    """The subcommand a command line names: its first word that is not an option (the top-level
    options take no value)."""
    for word in argv:
        if not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or, when ``command`` is one of them, with that one only
    (a name it does not know gets every subcommand, so argparse lists them in its error)."""
    parser = argparse.ArgumentParser(
        prog="insole",
        description="Record, simulate and analyse the open running insole's pressure stream.")
    parser.add_argument("--version", action="version", version=f"insole {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [m for m, names in _COMMAND_MODULES.items() if command in names] or list(_COMMAND_MODULES)
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_command_of(argv))
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
