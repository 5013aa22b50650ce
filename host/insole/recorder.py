"""``insole record`` and ``insole export``: lossless, crash-safe recording of one or two sources.

Every chunk a source delivers is appended, as received and with the host receive time, to that
source's ``.rec`` file (format in :mod:`insole.session`); the file is flushed at least once a
second, so SIGKILL loses at most the last second and leaves a readable session. Ctrl-C (SIGINT)
or SIGTERM close it cleanly. A port that goes away mid-run ends that source as a counted fault;
the other source goes on, and nothing already received is lost.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from . import __version__
from . import protocol as P
from .errors import InsoleError, SourceError
from .session import FRAMING_SERIAL, REC_MAGIC, SESSION_SCHEMA, encode_record, load_inputs
from .sources import Source, SourceClosed, open_source
from .stream import streams_from_sources

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


class _SourceWorker(threading.Thread):
    """Reads one source into its .rec file; decodes on the side only to show progress."""

    def __init__(self, index: int, source: Source, path: Path, stop: threading.Event) -> None:
        super().__init__(name=f"rec-{index}", daemon=True)
        self.index = index
        self.source = source
        self.path = path
        self.stop = stop
        if source.framing == FRAMING_SERIAL:
            self.decoder = P.StreamDecoder()
        else:  # one packet per chunk (BLE notifications)
            from .ble import PacketDecoder

            self.decoder = PacketDecoder()
        self.bytes = 0
        self.chunks = 0
        self.ended: str | None = None
        self.fault: str | None = None
        self.side: str | None = None

    def run(self) -> None:
        last_flush = time.monotonic()
        if self.source.live and self.source.framing == FRAMING_SERIAL:
            # opening a port discards what was waiting, INFO included: ask for it again
            try:
                self.source.write(P.frame(P.Command(P.CMD_GET_INFO)))
            except (SourceClosed, SourceError) as e:
                log.warning("%s: could not ask for INFO (%s)", self.source.url, e)
        with self.path.open("ab", buffering=1 << 16) as f:
            if f.tell() == 0:
                f.write(REC_MAGIC)
                f.flush()
            while not self.stop.is_set():
                try:
                    data = self.source.read(0.1)
                except SourceClosed as e:
                    self.ended = e.reason
                    if self.source.live:
                        self.fault = e.reason
                    break
                except Exception as e:  # noqa: BLE001 - keep what we have, report the fault
                    self.ended = self.fault = f"{type(e).__name__}: {e}"
                    break
                # a BLE source knows when each notification arrived; a port, when read returned
                now = getattr(self.source, "last_receive_time_s", None) or time.time()
                if data:
                    f.write(encode_record(now, data))
                    self.bytes += len(data)
                    self.chunks += 1
                    for pkt in self.decoder.feed(data):
                        if self.side is None and hasattr(pkt, "side"):
                            self.side = pkt.side
                mono = time.monotonic()
                if mono - last_flush >= FLUSH_INTERVAL_S:
                    f.flush()
                    last_flush = mono
            # stopped: what the source already received is kept (BLE: notifications queued)
            for data, t in getattr(self.source, "drain", list)():
                f.write(encode_record(t, data))
                self.bytes += len(data)
                self.chunks += 1
                self.decoder.feed(data)
            f.flush()


class Recorder:
    """Records sources into a session directory until stopped or every source has ended."""

    def __init__(self, urls: list[str], out_dir: str | Path, duration_s: float | None = None) -> None:
        self.urls = urls
        self.out = Path(out_dir)
        self.duration_s = duration_s
        self.stop = threading.Event()
        self.workers: list[_SourceWorker] = []

    def _write_meta(self, closed: bool, extra: dict | None = None) -> None:
        meta = {"schema": SESSION_SCHEMA, "created": self._created, "recorder": f"insole {__version__}",
                "closed": closed,
                "sources": [{"url": w.source.url, "file": w.path.name, "framing": w.source.framing,
                             "side": w.side, "bytes": w.bytes, "ended": w.ended, "fault": w.fault,
                             **({"link": w.source.ledger()} if hasattr(w.source, "ledger") else {})}
                            for w in self.workers]}
        if extra:
            meta.update(extra)
        tmp = self.out / "session.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp, self.out / "session.json")

    def run(self, progress=None) -> dict:
        sources = [open_source(u) for u in self.urls]
        opened = []
        try:
            for s in sources:
                opened.append(s.open())
        except SourceError:
            for s in opened:
                s.close()
            raise
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InsoleError(f"cannot create {self.out}: {e.strerror}") from e
        if (self.out / "session.json").exists():
            raise InsoleError(f"{self.out} already holds a session; choose a new --out")
        self._created = _now_iso()
        self.workers = [_SourceWorker(i, s, self.out / f"source{i}.rec", self.stop)
                        for i, s in enumerate(sources)]
        self._write_meta(closed=False)
        t0 = time.monotonic()
        for w in self.workers:
            w.start()
        last_meta = t0
        try:
            while any(w.is_alive() for w in self.workers):
                time.sleep(0.1)
                now = time.monotonic()
                if self.duration_s is not None and now - t0 >= self.duration_s:
                    break
                if now - last_meta >= 2.0:
                    self._write_meta(closed=False)
                    last_meta = now
                    if progress:
                        progress(self.workers, now - t0)
        finally:
            self.stop.set()
            for w in self.workers:
                w.join(timeout=5)
            for s in sources:
                s.close()
            self._write_meta(closed=True, extra={"ended": _now_iso(),
                                                 "elapsed_s": round(time.monotonic() - t0, 3)})
        return {"workers": self.workers, "elapsed_s": time.monotonic() - t0}


def _progress(workers, elapsed):
    parts = []
    for w in workers:
        d = w.decoder
        parts.append(f"{w.side or '?'}: {d.packets} packets, {d.error_count} bad frames")
        if hasattr(w.source, "ledger"):
            lg = w.source.ledger()
            parts[-1] += (f", {lg['reconnects']} reconnects, {lg['disconnected_s']:.1f} s disconnected"
                          + ("" if getattr(w.source, "connected", True) else ", RECONNECTING"))
        if w.fault:
            parts[-1] += f", FAULT {w.fault}"
    print(f"[{elapsed:6.1f} s] " + "; ".join(parts), file=sys.stderr, flush=True)


def _cmd_record(args: argparse.Namespace) -> int:
    from .ble import expand_urls

    args.sources = expand_urls(args.sources)  # ble:// alone: every insole advertising
    if len(args.sources) > 2:
        raise InsoleError("give one or two sources (one per foot)")
    rec = Recorder(args.sources, args.out, args.duration_s)

    def _term(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _term)
    try:
        try:
            res = rec.run(progress=None if args.quiet else _progress)
        except KeyboardInterrupt:
            res = {"workers": rec.workers}
            print("insole record: stopped; session closed cleanly", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, old)
    faults = 0
    for w in res["workers"]:
        d = w.decoder
        line = (f"{w.source.url}: {w.bytes} bytes, {d.packets} packets, {d.error_count} bad frames"
                + (f", side {w.side}" if w.side else ""))
        if w.fault:
            faults += 1
            line += f"; FAULT: {w.fault} (everything received before it is kept)"
        print(line)
    print(f"session written to {args.out}")
    return 0


def export_csv(inputs: list[str], out_path: str | Path) -> int:
    """One row per sample set: time, side, each zone's force (N) and the total.

    Time is seconds since that foot's first sample on its device clock. A missing sample set
    (lost packet, device drop) is a row with empty force cells: gaps stay visible.
    """
    from .analysis import Calibration, total_force

    feet = streams_from_sources(load_inputs(inputs))
    zones = sorted({z for fs in feet.values() for z in fs.zones}, key=P.ZONES.index)
    rows = 0
    try:
        f = open(out_path, "w", newline="")
    except OSError as e:
        raise InsoleError(f"cannot write {out_path}: {e.strerror}") from e
    with f:
        f.write(",".join(["t_s", "side", *[f"{z}_force_n" for z in zones], "total_force_n"]) + "\n")
        for side, fs in feet.items():
            cal = Calibration().apply(fs)
            force = cal.force_n_
            table = np.full((fs.n, len(zones) + 2), np.nan)
            table[:, 0] = fs.t_s
            for i, z in enumerate(zones):
                if z in fs.zones:
                    table[:, i + 1] = force[:, fs.zones.index(z)]
            table[:, -1] = total_force(force, cal.shorted_mask_)
            fmt = "%.4f," + side + "," + ",".join(["%.2f"] * (len(zones) + 1)) + "\n"
            for start in range(0, fs.n, 50_000):
                chunk = table[start:start + 50_000]
                f.write("".join(fmt % tuple(r) for r in chunk.tolist()).replace("nan", ""))
            rows += fs.n
    return rows


def _cmd_export(args: argparse.Namespace) -> int:
    if args.csv is None:
        raise InsoleError("choose an export format: --csv [PATH]")
    out = args.csv
    if out == "":
        first = Path(args.inputs[0])
        out = str(first / "samples.csv") if first.is_dir() else str(first.with_suffix(".csv"))
    n = export_csv(args.inputs, out)
    print(f"{n} rows written to {out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("record", help="record one or two sources into a session directory",
                       description="Append every chunk as received, with the host receive time, "
                                   "to DIR. Ctrl-C stops cleanly.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="serial:///dev/ttyUSB0, ble:// (both feet), ble://Insole-L, "
                        "file://capture.bin, sim://easy-run?side=left, ...")
    p.add_argument("--out", required=True, metavar="DIR", help="new session directory")
    p.add_argument("--duration-s", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_record)

    e = sub.add_parser("export", help="export a session or capture to CSV",
                       description="One row per sample set: time (s since that foot's first "
                                   "sample), side, each zone's force in newtons.")
    e.add_argument("inputs", nargs="+", metavar="INPUT")
    e.add_argument("--csv", nargs="?", const="", metavar="PATH",
                   help="write CSV (to PATH; default DIR/samples.csv or CAPTURE.csv)")
    e.set_defaults(func=_cmd_export)
