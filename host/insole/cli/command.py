"""``insole command SOURCE start|stop|rate HZ|identify|side left|right|info|forget-bonds``: one
command, its REPLY."""

from __future__ import annotations

import argparse

from insole import protocol as P
from insole.errors import SourceError
from insole.io.control import DEFAULT_TIMEOUT_S, parse_command, send_command
from insole.io.sources import LIVE_SCHEMES, open_source


def _describe_info(info: P.Info) -> str:
    return (f"{info.side} insole, device {info.device_id}, firmware {info.firmware}, "
            f"{info.rate_hz} Hz, zones {', '.join(info.zones)}, divider {info.supply_mv} mV / "
            f"{info.r_fixed_ohm} ohm")


def _describe_status(st: P.Status) -> str:
    return (f"battery {st.battery_pct} % ({st.battery_mv} mV), up {st.uptime_s} s, "
            f"{'streaming' if st.streaming else 'stopped'} at {st.rate_hz} Hz (achieved "
            f"{st.achieved_hz}), overruns {st.overruns}, sensor fault mask 0x{st.fault_mask:02x}")


def _cmd_command(args: argparse.Namespace) -> int:
    cmd = parse_command(args.words)
    if not (args.source.startswith(LIVE_SCHEMES) or "://" not in args.source):
        raise SourceError(f"{args.source}: commands go to a device (serial://PORT or ble://...)")
    src = open_source(args.source).open()
    try:
        wait_info = cmd.command == P.CMD_GET_INFO
        res = send_command(src, cmd, args.timeout_s, after_reply_s=0.5 if wait_info else 0.0)
    finally:
        src.close()
    name = P.COMMANDS[cmd.command]
    print(f"{args.source}: {name} ok")
    if wait_info:
        info = res.latest(P.Info)
        status = res.latest(P.Status)
        print("  " + (_describe_info(info) if info else "no INFO arrived after the REPLY"))
        if status:
            print("  " + _describe_status(status))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "command", help="send a device one command and wait for its reply",
        description="Send one command to an insole and wait for its REPLY: start, stop, "
                    "rate HZ (25-1000), identify (blink the LED), side left|right (stored on "
                    "the device), info (its INFO and latest STATUS), forget-bonds (erase every "
                    "BLE bond; the insole is open to pairing again). Exit 2 when the device "
                    "refuses or does not answer.")
    p.add_argument("source", metavar="SOURCE", help="serial:///dev/ttyUSB0 (or ble://... where built)")
    p.add_argument("words", nargs="+", metavar="COMMAND", help="start | stop | rate HZ | identify | "
                                                             "side left|right | info | forget-bonds")
    p.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"wait this long for the reply (default {DEFAULT_TIMEOUT_S:g})")
    p.set_defaults(func=_cmd_command)
