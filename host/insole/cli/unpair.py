"""``insole unpair ble://...``: remove this computer's bond with an insole."""

from __future__ import annotations

import argparse

from insole.errors import SourceError
from insole.io.ble import SCAN_TIMEOUT_S, unpair_insole


def _cmd_unpair(args: argparse.Namespace) -> int:
    if not args.source.lower().startswith("ble:") or args.source.rstrip("/").lower() == "ble:":
        raise SourceError(f"{args.source}: say which insole (ble://Insole-L or ble://ADDRESS)")
    address = unpair_insole(args.source, args.forget_on_device, args.timeout_s)
    done = "the insole forgot every bond and " if args.forget_on_device else ""
    print(f"{args.source}: {done}this computer no longer has a bond with {address}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "unpair", help="remove this computer's bond with an insole",
        description="Remove the bond the operating system keeps for an insole (bleak's unpair; "
                    "Linux and Windows; on macOS forget it under System Settings > Bluetooth). "
                    "With --forget-on-device, first tell the insole to erase all its bonds "
                    "(FORGET_BONDS, over the bonded link): it is then open to pairing again.")
    p.add_argument("source", metavar="SOURCE", help="ble://Insole-L or ble://ADDRESS")
    p.add_argument("--forget-on-device", action="store_true",
                   help="first make the insole erase every bond it stores (all computers)")
    p.add_argument("--timeout-s", type=float, default=SCAN_TIMEOUT_S, metavar="S",
                   help=f"scan for at most S seconds (default {SCAN_TIMEOUT_S:g})")
    p.set_defaults(func=_cmd_unpair)
