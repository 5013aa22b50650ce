"""``insole scan`` and ``insole info``: find insoles over BLE; show what one says about itself."""

from __future__ import annotations

import argparse
import json
import time

from insole import protocol as P
from insole.errors import SourceError
from insole.io.ble import SCAN_TIMEOUT_S, scan_insoles
from insole.io.session import FRAMING_SERIAL
from insole.io.sources import Source, SourceClosed, open_source
from insole.protocol import PacketDecoder

INFO_TIMEOUT_S = 3.0  # STATUS comes once a second; INFO first (BLE: read on connect)


def probe(source: Source, timeout_s: float = INFO_TIMEOUT_S) -> tuple[P.Info | None, P.Status | None]:
    """The INFO and the latest STATUS an open source delivers within ``timeout_s``."""
    if source.framing == FRAMING_SERIAL:
        dec = P.StreamDecoder()
        if source.live:
            try:
                source.write(P.frame(P.Command(P.CMD_GET_INFO)))
            except (SourceError, SourceClosed):
                pass  # a port that takes no commands still sends STATUS
    else:
        dec = PacketDecoder()
    info = status = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (info is None or status is None):
        try:
            data = source.read(0.1)
        except SourceClosed:
            break
        for pkt in dec.feed(data) if data else ():
            if isinstance(pkt, P.Info):
                info = pkt
            elif isinstance(pkt, P.Status):
                status = pkt
    return info, status


def _cmd_scan(args: argparse.Namespace) -> int:
    found = scan_insoles(args.timeout_s, details=not args.no_details)
    if args.json:
        print(json.dumps([f.to_json() for f in found], indent=1))
        return 0
    if not found:
        print("no insole is advertising (switch them on; an insole connected elsewhere does not "
              "advertise)")
        return 0
    print(f"{'name':10} {'side':6} {'address':38} {'signal':>8} {'battery':>8} firmware")
    for f in found:
        sig = f"{f.rssi_dbm} dBm" if f.rssi_dbm is not None else "?"
        bat = f"{f.battery_pct} %" if f.battery_pct is not None else "?"
        print(f"{f.name or '?':10} {f.side or '?':6} {f.address:38} {sig:>8} {bat:>8} "
              f"{f.firmware or '?'}")
    return 0


def _info_doc(url: str, info: P.Info | None, status: P.Status | None, link: dict | None) -> dict:
    doc: dict = {"source": url}
    if info is not None:
        doc["info"] = {"side": info.side, "zones": list(info.zones), "rate_hz": info.rate_hz,
                       "supply_mv": info.supply_mv, "r_fixed_ohm": info.r_fixed_ohm,
                       "device_id": info.device_id, "firmware": info.firmware}
    if status is not None:
        doc["status"] = {"side": status.side, "battery_pct": None if status.battery_pct == 255
                         else status.battery_pct, "battery_mv": status.battery_mv or None,
                         "uptime_s": status.uptime_s, "rate_hz": status.rate_hz,
                         "achieved_hz": status.achieved_hz, "overruns": status.overruns,
                         "fault_mask": status.fault_mask, "streaming": bool(status.streaming),
                         "cadence_spm": status.cadence_spm}
    if link:
        doc["link"] = {k: link[k] for k in ("address", "mtu") if k in link}
    return doc


def _cmd_info(args: argparse.Namespace) -> int:
    from insole.io.ble import expand_urls

    urls = expand_urls([args.source])
    docs = []
    for url in urls:
        src = open_source(url).open()
        try:
            info, status = probe(src, args.timeout_s)
            link = src.ledger() if hasattr(src, "ledger") else None
        finally:
            src.close()
        if info is None and status is None:
            raise SourceError(f"{url}: no INFO or STATUS within {args.timeout_s:g} s "
                              "(is it an insole, and is it powered?)")
        docs.append(_info_doc(url, info, status, link))
    if args.json:
        print(json.dumps(docs if len(docs) > 1 else docs[0], indent=1))
        return 0
    for d in docs:
        print(d["source"])
        for part in ("info", "status", "link"):
            for k, v in d.get(part, {}).items():
                if isinstance(v, list):
                    v = ", ".join(map(str, v))
                print(f"  {part + '.' + k:20} {v if v is not None else '?'}")
        if "status" not in d:
            print("  status: none received yet (STATUS comes once a second while connected)")
    return 0


def register(sub) -> None:
    s = sub.add_parser("scan", help="list the insoles advertising over BLE",
                       description="Scan for insoles advertising the insole service; connect to "
                                   "each in turn to read its battery and firmware.")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--timeout-s", type=float, default=SCAN_TIMEOUT_S, metavar="S",
                   help=f"scan for at most S seconds (default {SCAN_TIMEOUT_S:g}; stops early "
                        "once a left and a right insole are seen)")
    s.add_argument("--no-details", action="store_true",
                   help="do not connect to read battery and firmware")
    s.set_defaults(func=_cmd_scan)

    i = sub.add_parser("info", help="show an insole's INFO and latest STATUS",
                       description="Open SOURCE (ble://Insole-L, ble://, serial:///dev/ttyUSB0, "
                                   "sim://...) and print what the device says about itself.")
    i.add_argument("source", metavar="SOURCE")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.add_argument("--timeout-s", type=float, default=INFO_TIMEOUT_S, metavar="S",
                   help=f"wait at most S seconds for INFO and STATUS (default {INFO_TIMEOUT_S:g})")
    i.set_defaults(func=_cmd_info)
