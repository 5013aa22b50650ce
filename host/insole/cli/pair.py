"""``insole pair ble://...``: bond this computer with an insole inside its pairing window."""

from __future__ import annotations

import argparse

from insole.io.ble import SCAN_TIMEOUT_S, expand_urls, pair_insole


def _cmd_pair(args: argparse.Namespace) -> int:
    for url in expand_urls([args.source], timeout_s=args.timeout_s):
        res = pair_insole(url, args.timeout_s)
        if res.already:
            print(f"{url}: already takes commands from this computer ({res.address}); "
                  "nothing to do")
        else:
            print(f"{url}: paired ({res.address}); it now takes commands from this computer")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "pair", help="pair this computer with an insole (press its BOOT button for 3 s first)",
        description="Bond with an insole over BLE (LE Secure Connections, just works). A new "
                    "insole pairs at once; one already bonded pairs only within 60 s of its BOOT "
                    "button being held for 3 s. Checks that the insole then accepts a command. "
                    "ble:// alone pairs every insole advertising.")
    p.add_argument("source", metavar="SOURCE", help="ble://Insole-L, ble://ADDRESS or ble://")
    p.add_argument("--timeout-s", type=float, default=SCAN_TIMEOUT_S, metavar="S",
                   help=f"scan for at most S seconds (default {SCAN_TIMEOUT_S:g})")
    p.set_defaults(func=_cmd_pair)
