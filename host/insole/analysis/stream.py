"""From decoded packets to one foot's sample stream.

:class:`FootAssembler` takes one device's packets in arrival order (optionally with the host
receive time) and produces a :class:`FootStream`: a uniform grid on the device clock, ``t0_us``
unwrapped across the 2^32 wrap, every sample set the device sent in its slot and every slot that
nothing arrived for left as NaN (never filled). It keeps the data-quality ledger: packets lost
(gaps in ``seq``), sample sets the device itself dropped (overrun bit), decoder errors, duplicates,
device reboots, sensor faults, and the device-to-host clock estimate.

A device that reboots (watchdog, brown-out) starts again at seq 0 on a fresh clock. Its packets
are not duplicates: they start a new *segment* of the same foot, placed on the grid after the old
one (see :meth:`FootAssembler._start_segment`), so nothing after a reboot is dropped and the two
clocks are never mixed.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from insole import protocol as P
from insole.errors import InputFileError, ProtocolError
from insole.io.session import FRAMING_PACKETS, SourceData
from insole.model import hardware

log = logging.getLogger(__name__)

_WRAP = 1 << 32
# A rebooted device starts again at seq 0 (PROTOCOL.md): a packet whose seq goes back to below
# this, at a device time that no earlier packet of that seq can have had, starts a new segment.
REBOOT_MAX_SEQ = 256
# Where the host has no receive times (a raw capture), the time a reboot took is unknown: the new
# segment is placed this long after the old one (an ESP32 boots MicroPython in about a second).
REBOOT_GAP_UNKNOWN_US = 1_000_000


@dataclass
class FootStream:
    """One foot's samples on a uniform device-clock grid.

    Attributes:
        side: ``"left"`` or ``"right"``.
        info: the device's INFO packet (zones, rate, divider), or a stand-in if none arrived.
        period_us: nominal sample period.
        t0_us: unwrapped device time of sample 0 (the foot's first sample).
        volts: array (n, C) of pin voltages; NaN where no sample arrived.
        quality: the data-quality ledger (counts, see :meth:`FootAssembler.finish`).
        statuses: STATUS packets in arrival order.
        host_sync: (device_time_s, host_time_s) pairs for clock estimation, one per DATA packet.
    """

    side: str
    info: P.Info
    period_us: int
    t0_us: int
    volts: np.ndarray
    quality: dict
    statuses: list = field(default_factory=list)
    host_sync: np.ndarray | None = None
    source: str = ""

    @property
    def rate_hz(self) -> float:
        return 1e6 / self.period_us

    @property
    def n(self) -> int:
        return int(self.volts.shape[0])

    @property
    def t_s(self) -> np.ndarray:
        """Seconds since this foot's first sample, on the device clock."""
        return np.arange(self.n) * (self.period_us * 1e-6)

    @property
    def zones(self) -> tuple[str, ...]:
        return self.info.zones


class FootAssembler:
    """Builds one device's :class:`FootStream` from its packets (feed in arrival order)."""

    def __init__(self, source: str = "") -> None:
        self.source = source
        self.info: P.Info | None = None
        self.statuses: list[P.Status] = []
        self.replies: list[P.Reply] = []
        self._seq: int | None = None
        self._t_last_raw: int | None = None
        self._t_unwrapped: int = 0
        self._next_t: int | None = None
        self._period: int | None = None
        self._side: str | None = None
        self._blocks: list[tuple[int, np.ndarray]] = []
        self._sync: list[tuple[int, float]] = []
        self._last_host: float | None = None
        self._last_n_sets = 0
        self.segments: list[dict] = []
        self.q: Counter[str] = Counter()

    def add(self, pkt: P.Packet, host_time_s: float | None = None) -> None:
        if isinstance(pkt, P.Data):
            self._add_data(pkt, host_time_s)
        elif isinstance(pkt, P.Info):
            if self.info is not None and self.info.zones != pkt.zones:
                self.q["info_changed"] += 1
            elif self.info is None:
                self.info = pkt
        elif isinstance(pkt, P.Status):
            self.statuses.append(pkt)
        elif isinstance(pkt, P.Reply):
            self.replies.append(pkt)
        else:
            self.q["unexpected_packets"] += 1

    def _add_data(self, pkt: P.Data, host_time_s: float | None) -> None:
        self._add_fields(pkt.seq, pkt.t0_us, pkt.period_us, pkt.channels, pkt.n_sets, pkt.side,
                         pkt.overrun, pkt.samples.astype("<u2").tobytes(), host_time_s)

    def add_raw(self, raws: list[bytes], host_times: list[float | None] | None = None) -> Counter:
        """Add undecoded packets (as :meth:`StreamDecoder.feed_raw` gives them) in arrival order.

        The same as decoding each and calling :meth:`add`, but DATA headers are read with one
        numpy call and their samples are kept as bytes, so a long capture costs a few
        microseconds per packet. Returns the counts of packets that would not decode, by kind.
        """
        errors: Counter[str] = Counter()
        times = host_times if host_times is not None else [None] * len(raws)
        is_data = [len(r) >= P.DATA_HEADER_BYTES and r[1] == P.DATA for r in raws]
        heads = np.frombuffer(b"".join(r[:P.DATA_HEADER_BYTES] for r, d in zip(raws, is_data) if d),
                              dtype=P.DATA_HEADER_DTYPE)
        seq, t0, period = heads["seq"].tolist(), heads["t0_us"].tolist(), heads["period_us"].tolist()
        chans, sets, flags = heads["channels"].tolist(), heads["sets"].tolist(), heads["flags"].tolist()
        h = 0
        for r, d, t in zip(raws, is_data, times):
            if d:
                c, n = chans[h], sets[h]
                if 1 <= c <= P.MAX_CHANNELS and n >= 1 and len(r) == P.DATA_HEADER_BYTES + 2 * c * n \
                        and r[0] == P.VERSION:
                    fl = flags[h]
                    self._add_fields(seq[h], t0[h], period[h], c, n, P.SIDES[fl & 1], bool(fl & 4),
                                     r[P.DATA_HEADER_BYTES:], t)
                    h += 1
                    continue
                h += 1
            try:
                self.add(P.decode(r), t)
            except ProtocolError as e:
                errors[e.kind] += 1
        return errors

    def _add_fields(self, seq: int, t0_us: int, period_us: int, channels: int, n_sets: int,
                    side: str, overrun: bool, samples: bytes, host_time_s: float | None) -> None:
        q = self.q
        if self._period is None:
            self._period = period_us
            self._side = side
            self._channels = channels
        if period_us != self._period or channels != self._channels:
            q["format_changed_packets"] += 1  # a SET_RATE mid-stream: kept out, counted
            return
        if side != self._side:
            q["side_mismatch_packets"] += 1
        # seq: +1 per packet, wraps at 65536; a jump forward is transport loss
        rebooted = False
        if self._seq is not None:
            gap = (seq - self._seq - 1) & 0xFFFF
            if gap >= 0x8000:
                if not self._is_reboot(seq, t0_us, n_sets):
                    q["duplicate_packets"] += 1
                    return
                rebooted = True
                seq_gap = 0
            else:
                q["packets_lost"] += gap
                seq_gap = gap
        else:
            seq_gap = 0
        self._seq = seq
        if rebooted:
            t = self._start_segment(t0_us, host_time_s)
        # t0_us: 32-bit device clock, unwrapped by accumulating forward differences
        elif self._t_last_raw is None:
            t = t0_us
            self.segments.append({"first_t0_us": t0_us, "starts_at_us": 0})
        else:
            d = (t0_us - self._t_last_raw) % _WRAP
            if d >= _WRAP // 2:
                q["time_reversed_packets"] += 1
                return
            t = self._t_unwrapped + d
        self._t_last_raw = t0_us
        self._t_unwrapped = t
        if self._next_t is not None and not rebooted:
            missing = int(round((t - self._next_t) / self._period))
            if missing > 0 and seq_gap == 0:
                q["samples_dropped"] += missing  # the device's own overrun
            elif missing < 0:
                q["overlapping_packets"] += 1
        if overrun:
            q["overrun_packets"] += 1
        q["packets"] += 1
        q["sample_sets"] += n_sets
        self._next_t = t + n_sets * self._period
        self._blocks.append((t, n_sets, samples))
        self._last_n_sets = n_sets
        if host_time_s is not None:
            self._sync.append((self._next_t - self._period, host_time_s))
            self._last_host = host_time_s

    def _is_reboot(self, seq: int, t0_us: int, n_sets: int) -> bool:
        # A duplicate is an old packet again: its t0 is the one its seq had. A reboot restarts
        # seq near 0 on a fresh clock, which no earlier packet's seq/t0 pair matches.
        if seq >= REBOOT_MAX_SEQ:
            return False
        back = (self._seq - seq) & 0xFFFF
        expected = (self._t_last_raw - back * n_sets * self._period) % _WRAP
        off = min((t0_us - expected) % _WRAP, (expected - t0_us) % _WRAP)
        return off > 10 * self._period

    def _start_segment(self, t0_us: int, host_time_s: float | None) -> int:
        """A rebooted device: its packets continue the grid after the old segment's last sample.

        With host receive times the gap is what the host clock saw between the last packet of
        the old segment and the first of the new one (minus the new packet's own span); without
        them it is :data:`REBOOT_GAP_UNKNOWN_US`. The gap's slots stay missing (NaN) and are
        counted as ``reboot_gap_samples``, not as loss or device drops.
        """
        q = self.q
        q["device_reboots"] += 1
        if host_time_s is not None and self._last_host is not None:
            gap_us = (host_time_s - self._last_host) * 1e6 - self._period * (self._last_n_sets - 1)
            gap_us = max(gap_us, float(self._period))
        else:
            gap_us = float(REBOOT_GAP_UNKNOWN_US)
            q["reboot_gap_unknown"] += 1
        gap_sets = max(0, int(round(gap_us / self._period)) - 1)
        q["reboot_gap_samples"] += gap_sets
        t = self._next_t + gap_sets * self._period
        self.segments.append({"first_t0_us": t0_us, "starts_at_us": t - self._blocks[0][0]})
        return t

    def finish(self, decoder_errors: dict[str, int] | None = None) -> FootStream:
        """Build the stream. Raises InputFileError if the source carried no DATA at all."""
        if not self._blocks:
            raise InputFileError(f"{self.source or 'input'}: no DATA packets (not a capture, "
                                 "or the device never streamed)")
        info = self.info
        c = self._channels
        if info is None:
            self.q["missing_info"] += 1
            # no INFO arrived: assume the default board's zones and divider, and say so
            supply_mv, r_fixed_ohm = hardware.divider()
            zones = hardware.default_zones()
            if len(zones) != c:
                zones = P.ZONES[:c]
            info = P.Info(self._side or "left", zones, int(round(1e6 / self._period)),
                          supply_mv, r_fixed_ohm, "000000000000", "unknown")
        elif len(info.zones) != c:
            raise InputFileError(f"{self.source}: INFO lists {len(info.zones)} zones but DATA "
                                 f"carries {c} channels")
        period = self._period
        t0 = self._blocks[0][0]
        starts = np.fromiter(((b[0] - t0) for b in self._blocks), dtype=np.int64,
                             count=len(self._blocks))
        idx = np.rint(starts / period).astype(np.int64)
        lens = np.fromiter((b[1] for b in self._blocks), dtype=np.int64, count=len(self._blocks))
        n = int((idx + lens).max())
        volts = np.full((n, c), np.nan)
        allsamples = np.frombuffer(b"".join(b[2] for b in self._blocks), dtype="<u2")
        allsamples = allsamples.reshape(-1, c) * P.SAMPLE_UNIT_V
        rows = np.repeat(idx, lens) + (np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens))
        volts[rows] = allsamples
        q = dict(self.q)
        q.setdefault("packets_lost", 0)
        q.setdefault("samples_dropped", 0)
        q["samples_missing"] = int(np.isnan(volts[:, 0]).sum())
        errs = dict(decoder_errors or {})
        q["decode_errors"] = int(sum(errs.values()))
        q["decode_errors_by_kind"] = {k: v for k, v in errs.items() if v}
        q["duration_s"] = n * period * 1e-6
        q.setdefault("device_reboots", 0)
        if q["device_reboots"]:
            q["segments"] = [{"first_t0_us": g["first_t0_us"],
                              "starts_at_s": round(g["starts_at_us"] * 1e-6, 6)} for g in self.segments]
        if self.statuses:
            q["device_overruns"] = int(self.statuses[-1].overruns - self.statuses[0].overruns)
            fm = 0
            for s in self.statuses:
                fm |= s.fault_mask
            q["device_fault_mask"] = fm
            ach = [s.achieved_hz for s in self.statuses if s.streaming]
            q["achieved_hz_median"] = float(np.median(ach)) if ach else None
        sync = None
        if self._sync:
            arr = np.array(self._sync, dtype=float)
            arr[:, 0] = (arr[:, 0] - t0) * 1e-6
            sync = arr
            q.update(clock_estimate(arr))
        return FootStream(info.side if self.info else (self._side or "left"), info, period, t0,
                          volts, q, self.statuses, sync, self.source)


def clock_estimate(sync: np.ndarray, window_s: float | None = None) -> dict:
    """Device-to-host clock offset and drift by minimum-delay filtering.

    The host receives a packet some delay after its last sample was taken; the smallest delays
    are the truest. Per window the packet with the smallest (host - device) is kept; a line is
    fitted through those, windows whose minimum still lies well above the line (a burst of
    queued packets, a stalled link) are dropped, and the line is fitted again. The residual is
    the largest distance of a kept minimum from the line.
    """
    dev, host = sync[:, 0], sync[:, 1]
    span = float(dev.max() - dev.min()) if len(dev) else 0.0
    if window_s is None:
        window_s = min(5.0, max(0.5, span / 30.0))
    diff = host - dev
    win = np.floor(dev / window_s).astype(np.int64)
    order = np.lexsort((diff, win))
    first = np.ones(len(order), bool)
    first[1:] = win[order][1:] != win[order][:-1]
    sel = order[first]
    x, y = dev[sel], diff[sel]
    if len(sel) < 3:
        return {"clock_offset_s": float(y.min()), "clock_drift_ppm": None,
                "clock_residual_ms": None}
    keep = np.ones(len(x), bool)
    for _ in range(3):
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        resid = y - (slope * x + intercept)
        cut = max(0.0005, 3.0 * float(np.median(np.abs(resid[keep]))))
        new = resid <= cut
        if new.sum() < 3 or (new == keep).all():
            break
        keep = new
    return {"clock_offset_s": float(intercept), "clock_drift_ppm": float(slope * 1e6),
            "clock_residual_ms": float(np.max(np.abs(resid[keep])) * 1e3),
            "clock_windows_used": int(keep.sum())}


def streams_from_sources(sources: list[SourceData]) -> dict[str, FootStream]:
    """Decode each source into a foot stream; one foot per side (a second one is an error)."""
    feet: dict[str, FootStream] = {}
    if len(sources) > 1:
        # sources are independent; numpy releases the GIL for much of the work
        with ThreadPoolExecutor(max_workers=min(len(sources), os.cpu_count() or 1)) as ex:
            streams = list(ex.map(stream_from_source, sources))
    else:
        streams = [stream_from_source(s) for s in sources]
    for src, fs in zip(sources, streams):
        if fs.side in feet:
            raise InputFileError(f"{src.name} and {feet[fs.side].source} are both the "
                                 f"{fs.side} foot; give one input per foot")
        feet[fs.side] = fs
    return feet


def stream_from_source(src: SourceData) -> FootStream:
    asm = FootAssembler(src.name)
    errors: Counter[str] = Counter(src.read_errors)
    if src.framing == FRAMING_PACKETS:
        for ch in src.chunks:
            try:
                asm.add(P.decode(ch.data), ch.host_time_s)
            except ProtocolError as e:  # every bad packet is counted, never raised
                errors[e.kind] += 1
    else:
        dec = P.StreamDecoder()
        raws: list[bytes] = []
        times: list[float | None] = []
        for ch in src.chunks:
            before = len(raws)
            dec.feed_raw(ch.data, raws, as_bytes=True)
            times.extend([ch.host_time_s] * (len(raws) - before))
        dec.flush()
        errors.update(dec.errors)
        errors.update(asm.add_raw(raws, times))
        if dec.packets == 0:
            raise InputFileError(f"{src.name}: no insole packets found in {dec.bytes_in} bytes "
                                 "(not a capture of the insole protocol)")
    fs = asm.finish(errors)
    if src.link:  # the BLE link's own ledger: how often and how long it was down
        fs.quality["link_reconnects"] = int(src.link.get("reconnects", 0))
        fs.quality["link_disconnected_s"] = float(src.link.get("disconnected_s", 0.0))
    return fs
