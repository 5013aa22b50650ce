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
import math
import struct
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from insole import protocol as P
from insole.errors import InputFileError, ProtocolError
from insole.io.session import FRAMING_PACKETS, FRAMING_SERIAL, SourceData
from insole.model import hardware
from insole.protocol.framing import Packed

log = logging.getLogger(__name__)

_WRAP = 1 << 32
# A rebooted device starts again at seq 0 (PROTOCOL.md): a packet whose seq goes back to below
# this, at a device time that no earlier packet of that seq can have had, starts a new segment.
REBOOT_MAX_SEQ = 256
# Where the host has no receive times (a raw capture), the time a reboot took is unknown: the new
# segment is placed this long after the old one (an ESP32 boots MicroPython in about a second).
REBOOT_GAP_UNKNOWN_US = 1_000_000
# A reboot gap the host clock puts beyond this (or before the last packet: a host clock set
# back, a damaged file) is not believed: the gap is then unknown, as without host times. An
# hour of missing rows is about 20 MB of grid at 500 Hz x 5 zones; a fuzzed file once claimed
# 3.4e9 s (tools/fuzz.py, seed 18).
REBOOT_GAP_MAX_US = 3_600_000_000


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
        statuses: unused (STATUS packets are counted in ``quality``); kept for callers.
        host_sync: (device_time_s, host_time_s) pairs for clock estimation: the DATA packet of
            smallest delay per clock-sync bin (:class:`SyncBins`), in device-time order.
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


@dataclass
class Block:
    """A piece of one foot's grid, as :meth:`FootAssembler.take` hands it out.

    Attributes:
        row0: grid row of the block's first row (rows count sample periods from the foot's
            first sample).
        units: (m, C) samples as sent (uint16, 100 µV each); 0 where nothing arrived.
        valid: (m,) True where a sample set arrived.
        device_faults: ``(row, fault_mask)`` of each STATUS packet in this block's span, in
            arrival order (``row``: the grid's end when it arrived).
    """

    row0: int
    units: np.ndarray
    valid: np.ndarray
    device_faults: list = field(default_factory=list)

    @property
    def rows(self) -> int:
        return int(self.units.shape[0])

    @property
    def volts(self) -> np.ndarray:
        """(m, C) pin voltages, NaN where nothing arrived."""
        v = self.units * P.SAMPLE_UNIT_V
        v[~self.valid] = np.nan
        return v

    @classmethod
    def from_volts(cls, row0: int, volts: np.ndarray, device_faults: list | None = None) -> Block:
        """A block from pin voltages (NaN rows: nothing arrived), as a FootStream holds them."""
        valid = ~np.isnan(volts).all(axis=1) if volts.size else np.zeros(len(volts), bool)
        units = np.rint(np.nan_to_num(volts) / P.SAMPLE_UNIT_V).astype(np.uint16)
        return cls(row0, units, valid, list(device_faults or []))

    def rows_slice(self, a: int, b: int, device_faults: list) -> Block:
        return Block(self.row0 + a, self.units[a:b], self.valid[a:b], device_faults)


# Without an INFO packet the zones are unknown: blocks are held back until INFO arrives or the
# grid holds this much; then the default board stands in (counted as ``missing_info``).
INFO_WAIT_US = 5_000_000
# The device-to-host clock is estimated from the smallest delay per window; windows are built
# from minima per bin of device time (see clock_estimate), so the sync data stays small: bins of
# SYNC_BIN_S at first, at most SYNC_MAX_BINS of them (16 bytes each: 32 kB a foot); a longer run
# doubles the bin width (SyncBins). 2048 bins of 0.5 s, then 1 s, give the fit's 5 s windows (its
# window once the timed packets span 150 s) the same minima as every packet up to 2048 s (34 min).
SYNC_BIN_S = 0.5
SYNC_MAX_BINS = 2048


class SyncBins:
    """The clock sync's points in fixed memory: per bin of device time, the (device s,
    host - device s) of the packet with the smallest delay.

    Bins are ``[k * bin_s, (k + 1) * bin_s)`` of device seconds, k from 0 to ``max_bins - 1``.
    A point past the last bin doubles ``bin_s`` (as often as needed): bins 2k and 2k + 1 merge
    into k, keeping the smaller delay (the earlier bin on a tie): the minimum that bins of the
    doubled width would have taken from every point. The two arrays are allocated once.
    """

    def __init__(self, bin_s: float = SYNC_BIN_S, max_bins: int = SYNC_MAX_BINS) -> None:
        if max_bins < 2 or max_bins % 2:
            raise ValueError("max_bins must be even and at least 2")
        self.bin_s = float(bin_s)
        self.dev_s = np.full(max_bins, np.nan)
        self.diff_s = np.full(max_bins, np.inf)

    @property
    def nbytes(self) -> int:
        return self.dev_s.nbytes + self.diff_s.nbytes

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(device s, host - device s) of the bins that hold a point, in device-time order."""
        used = ~np.isnan(self.dev_s)
        return self.dev_s[used], self.diff_s[used]

    def _widen(self, top_bin: int) -> int:
        """Double the bin width until bin ``top_bin`` (of the current width) fits; returns how
        many times. A bin index then shifts right by that many bits: halving a float is exact,
        so floor(dev / (2 w)) == floor(dev / w) // 2."""
        n = len(self.dev_s)
        shift = 0
        while top_bin >> shift >= n:
            pair = self.diff_s.reshape(-1, 2)
            pick = np.arange(n // 2) * 2 + (pair[:, 1] < pair[:, 0])
            dev, diff = self.dev_s[pick], self.diff_s[pick]
            self.dev_s[: n // 2], self.diff_s[: n // 2] = dev, diff
            self.dev_s[n // 2:], self.diff_s[n // 2:] = np.nan, np.inf
            self.bin_s *= 2.0
            shift += 1
        return shift

    def add_one(self, dev_s: float, host_s: float) -> None:
        """One packet (the live path): the same as :meth:`add` in plain Python."""
        diff = host_s - dev_s
        b = math.floor(dev_s / self.bin_s)
        if b < 0:  # before the first sample (cannot happen on the grid): left out
            return
        if b >= len(self.dev_s):
            b >>= self._widen(b)
        if diff < self.diff_s[b]:
            self.diff_s[b] = diff
            self.dev_s[b] = dev_s

    def add(self, dev_s: np.ndarray, host_s: np.ndarray) -> None:
        """Many packets at once (device s, host s), in any order."""
        if not len(dev_s):
            return
        diff = host_s - dev_s
        b = np.floor(dev_s / self.bin_s).astype(np.int64)
        if b.min() < 0:  # before the first sample (cannot happen on the grid): left out
            keep = b >= 0
            dev_s, diff, b = dev_s[keep], diff[keep], b[keep]
            if not len(b):
                return
        top = int(b.max())
        if top >= len(self.dev_s):
            b >>= self._widen(top)
        order = np.lexsort((diff, b))
        first = np.ones(len(order), bool)
        first[1:] = b[order][1:] != b[order][:-1]
        sel = order[first]
        bb = b[sel]
        better = diff[sel] < self.diff_s[bb]
        self.diff_s[bb[better]] = diff[sel][better]
        self.dev_s[bb[better]] = dev_s[sel][better]


def _sample_bytes(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, hb: int) -> bytes:
    """The bytes ``arr[starts[i] + hb:ends[i]]`` of every packet i, joined. Packets of one
    length that follow each other at one stride (the usual case) are read as a strided view,
    a run at a time; else through a mask."""
    lens = ends - starts
    size = int(lens[0])
    if (lens == size).all():
        gaps = np.diff(starts)
        stride = int(gaps.min()) if len(gaps) else size  # >= size: the packets do not overlap
        cut = [0, *(np.flatnonzero(gaps != stride) + 1).tolist(), len(starts)]
        out = [np.ndarray((b - a, size - hb), np.uint8, arr, int(starts[a]) + hb, (stride, 1))
               for a, b in zip(cut[:-1], cut[1:])]
        return np.concatenate(out).tobytes()
    mark = np.zeros(len(arr) + 1, np.int8)
    mark[starts + hb] = 1
    mark[ends] -= 1
    return arr[np.cumsum(mark[:-1], dtype=np.int8).view(bool)].tobytes()


class FootAssembler:
    """One device's packets (in arrival order) → its grid, block by block, and the ledger.

    Feed packets with :meth:`add` (decoded) or :meth:`add_raw` (undecoded, the fast path), take
    the grid so far with :meth:`take` (a :class:`Block`, or None while nothing new is ready),
    and end with :meth:`finish` (the last block and the quality ledger). Memory does not grow
    with the run: what was taken is gone, the clock sync is kept as one minimum per bin of
    device time in a fixed :class:`SyncBins`, STATUS packets as counts.

    Rows are placed by device time (``rint((t - t_first) / period)``). A packet that overlaps
    rows already filled (its t0 before the end of the one before, a fault) fills only the rows
    after them: the first arrival wins, the rest is counted (``overlap_samples_dropped``).
    """

    def __init__(self, source: str = "") -> None:
        self.source = source
        self.info: P.Info | None = None
        self.replies: list[P.Reply] = []
        self.q: Counter[str] = Counter()
        self.segments: list[dict] = []
        self._seq: int | None = None
        self._t_last_raw: int | None = None
        self._t_unwrapped = 0
        self._next_t: int | None = None
        self._period: int | None = None
        self._channels: int | None = None
        self._side: str | None = None
        self._t_origin: int | None = None
        self._last_host: float | None = None
        self._last_n_sets = 0
        self._row_next = 0  # the grid's end: rows [0, _row_next) are placed
        self._row_taken = 0  # rows [0, _row_taken) were handed out
        self._pending: list[tuple[np.ndarray, np.ndarray, bytes]] = []  # (rows, lens, samples)
        self._faults: list[tuple[int, int]] = []
        self._info_used: P.Info | None = None
        # STATUS: counts instead of the packets
        self._status_first = self._status_last = None
        self._fault_mask = 0
        self._achieved: Counter[int] = Counter()
        # clock sync: per bin of device time, the (device s, host - device s) of the smallest delay
        self._sync = SyncBins()

    # --- packets in -------------------------------------------------------------------------

    def add(self, pkt: P.Packet, host_time_s: float | None = None) -> None:
        if isinstance(pkt, P.Data):
            self._add_fields(pkt.seq, pkt.t0_us, pkt.period_us, pkt.channels, pkt.n_sets, pkt.side,
                             pkt.overrun, pkt.samples.astype("<u2").tobytes(), host_time_s)
        else:
            self._add_other(pkt)

    def _add_other(self, pkt: P.Packet) -> None:
        if isinstance(pkt, P.Info):
            if self.info is not None and self.info.zones != pkt.zones:
                self.q["info_changed"] += 1
            elif self.info is None:
                if self._info_used is not None:
                    self.q["info_late"] += 1  # after the stand-in was chosen: kept out, counted
                self.info = pkt
        elif isinstance(pkt, P.Status):
            self.q["status_packets"] += 1
            if self._status_first is None:
                self._status_first = pkt
            self._status_last = pkt
            self._fault_mask |= pkt.fault_mask
            if pkt.streaming:
                self._achieved[pkt.achieved_hz] += 1
            if pkt.fault_mask:
                self._faults.append((self._row_next, pkt.fault_mask))
        elif isinstance(pkt, P.Reply):
            self.replies.append(pkt)
        else:
            self.q["unexpected_packets"] += 1

    def add_raw(self, raws: list[bytes], host_times: list[float | None] | None = None) -> Counter:
        """Add undecoded packets (as :meth:`StreamDecoder.feed_raw` gives them) in arrival order.

        The same as decoding each and calling :meth:`add`: DATA headers are read with one numpy
        call, and a run of DATA packets with nothing unusual (same format, seq and clock moving
        forward, no overlap) is placed with array arithmetic; anything else goes packet by
        packet. Returns the counts of packets that would not decode, by kind.
        """
        errors: Counter[str] = Counter()
        if not raws:
            return errors
        times = host_times if host_times is not None else [None] * len(raws)
        if len(raws) <= 2:  # a live chunk of a frame or two: decoding each is cheaper
            for r, t in zip(raws, times):
                self._decode_add(r, t, errors)
            return errors
        hb = P.DATA_HEADER_BYTES
        is_data = [len(r) >= hb and r[1] == P.DATA for r in raws]
        heads = np.frombuffer(b"".join([r[:hb] for r, d in zip(raws, is_data) if d]),
                              dtype=P.DATA_HEADER_DTYPE)
        c, n = heads["channels"].astype(np.int64), heads["sets"].astype(np.int64)
        lens = np.fromiter((len(r) for r, d in zip(raws, is_data) if d), np.int64, len(heads))
        ok = (heads["version"] == P.VERSION) & (c >= 1) & (c <= P.MAX_CHANNELS) & (n >= 1) \
            & (lens == hb + 2 * c * n)
        if len(heads) and ok.all() and self._period is not None:
            others = [(k, r, t) for k, (r, d, t) in enumerate(zip(raws, is_data, times)) if not d]
            samples = b"".join([r[hb:] for r, d in zip(raws, is_data) if d])
            dtimes = [t for t, d in zip(times, is_data) if d]
            if self._fast(heads, samples, is_data, dtimes, others, errors):
                return errors
        h = 0
        seq, t0, per = heads["seq"].tolist(), heads["t0_us"].tolist(), heads["period_us"].tolist()
        cl, nl, fl, okl = c.tolist(), n.tolist(), heads["flags"].tolist(), ok.tolist()
        for r, d, t in zip(raws, is_data, times):
            if d:
                i = h
                h += 1
                if okl[i]:
                    f = fl[i]
                    self._add_fields(seq[i], t0[i], per[i], cl[i], nl[i], P.SIDES[f & 1],
                                     bool(f & 4), r[hb:], t)
                    continue
            self._decode_add(r, t, errors)
        return errors

    def add_packed(self, packed: Packed, host_time_s: float | None = None) -> Counter:
        """:meth:`add_raw` of packets that arrived together (one host time), as spans of one
        buffer (:meth:`StreamDecoder.feed_packed`): DATA headers and samples are gathered with
        numpy, no object per packet. Anything unusual goes to :meth:`add_raw`."""
        errors: Counter[str] = Counter()
        buf, starts, ends = packed.buf, packed.starts, packed.ends
        k = len(starts)
        hb = P.DATA_HEADER_BYTES
        arr = np.frombuffer(buf, np.uint8)
        lens = ends - starts
        is_data = lens >= hb
        is_data[is_data] = arr[starts[is_data] + 1] == P.DATA
        if self._period is None:
            # the first DATA packet sets the format: that feed the slow way (as add_raw does;
            # it also fixes the order of the ledger's keys)
            return self.add_raw(packed.packets(), [host_time_s] * k)
        ds = starts[is_data]
        heads = arr[ds[:, None] + np.arange(hb)].view(P.DATA_HEADER_DTYPE).ravel()
        c, n = heads["channels"].astype(np.int64), heads["sets"].astype(np.int64)
        ok = (heads["version"] == P.VERSION) & (c >= 1) & (c <= P.MAX_CHANNELS) & (n >= 1) \
            & (lens[is_data] == hb + 2 * c * n)
        if k > 2 and len(heads) and ok.all():
            others = [(int(j), buf[starts[j]:ends[j]], host_time_s) for j in np.flatnonzero(~is_data)]
            samples = _sample_bytes(arr, ds, ends[is_data], hb)
            if self._fast(heads, samples, is_data, [host_time_s] * len(heads), others, errors):
                return errors
        errors.update(self.add_raw(packed.packets(), [host_time_s] * k))
        return errors

    def _decode_add(self, raw: bytes, host_time_s: float | None, errors: Counter) -> None:
        """Decode one packet the slow way and add it; a bad one is counted by kind."""
        n = len(raw)
        if n >= P.DATA_HEADER_BYTES and raw[0] == P.VERSION and raw[1] == P.DATA:
            _, _, flags, c, seq, t0, period, sets = _DATA_HEADER.unpack_from(raw)
            if 1 <= c <= P.MAX_CHANNELS and sets >= 1 and n == P.DATA_HEADER_BYTES + 2 * c * sets:
                # a good DATA packet (as P.decode checks it): its samples stay bytes
                self._add_fields(seq, t0, period, c, sets, P.SIDES[flags & 1], bool(flags & 0x04),
                                 raw[P.DATA_HEADER_BYTES:], host_time_s)
                return
        try:
            pkt = P.decode(raw)
        except ProtocolError as e:
            errors[e.kind] += 1
            return
        self.add(pkt, host_time_s)

    def _fast(self, heads, samples: bytes, is_data, dtimes: list, others, errors) -> bool:
        """Place a run of ordinary DATA packets at once; False (nothing done) if it is not one.
        ``samples``: the DATA packets' sample bytes, joined; ``is_data`` per packet in arrival
        order; ``dtimes`` the DATA packets' host times; ``others`` (position, bytes, time) of
        the rest."""
        k = len(heads)
        if self._period is None:
            return False  # the first packet sets the format: the slow path does it
        period, chans = self._period, self._channels
        seq = heads["seq"].astype(np.int64)
        t0 = heads["t0_us"].astype(np.int64)
        n = heads["sets"].astype(np.int64)
        flags = heads["flags"]
        if not ((heads["period_us"] == period).all() and (heads["channels"] == chans).all()):
            return False
        prev_seq = np.concatenate(([self._seq], seq[:-1]))
        gap = (seq - prev_seq - 1) & 0xFFFF
        prev_t = np.concatenate(([self._t_last_raw], t0[:-1]))
        d = (t0 - prev_t) % _WRAP
        if (gap >= 0x8000).any() or (d >= _WRAP // 2).any():
            return False
        t = self._t_unwrapped + np.cumsum(d)
        ends = t + n * period
        prev_end = np.concatenate(([self._next_t], ends[:-1]))
        missing = np.rint((t - prev_end) / period).astype(np.int64)
        if (missing < 0).any():
            return False
        # accepted as a whole: the same counts the packet-by-packet path keeps
        sides = np.array(P.SIDES)[flags & 1]
        counts = {"side_mismatch_packets": int((sides != self._side).sum()),
                  "packets_lost": int(gap.sum()),
                  "samples_dropped": int(missing[(missing > 0) & (gap == 0)].sum()),
                  "overrun_packets": int(((flags & 4) != 0).sum()),
                  "packets": k, "sample_sets": int(n.sum())}
        self.q.update({key: v for key, v in counts.items() if v})  # as the packet path counts
        rows = np.rint((t - self._t_origin) / period).astype(np.int64)
        # packets other than DATA, in their place: STATUS marks the grid's end when it came
        data_before = 0
        if others:
            pos = np.cumsum(is_data)  # DATA packets up to and including each position
            for kpos, r, tt in others:
                data_before = int(pos[kpos])
                saved = self._row_next
                if data_before:
                    self._row_next = int(rows[data_before - 1] + n[data_before - 1])
                try:
                    self._add_other(P.decode(r))
                except ProtocolError as e:
                    errors[e.kind] += 1
                self._row_next = saved
        self._pending.append((rows, n, samples))
        self._row_next = int(rows[-1] + n[-1])
        self._seq = int(seq[-1])
        self._t_last_raw = int(t0[-1])
        self._t_unwrapped = int(t[-1])
        self._next_t = int(ends[-1])
        self._last_n_sets = int(n[-1])
        if dtimes[-1] is not None:
            host = np.array([np.nan if x is None else x for x in dtimes], dtype=float)
            good = ~np.isnan(host)
            self._sync.add((ends[good] - period - self._t_origin) * 1e-6, host[good])
            self._last_host = float(host[-1]) if good[-1] else self._last_host
        return True

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
        seq_gap = 0
        if self._seq is not None:
            gap = (seq - self._seq - 1) & 0xFFFF
            if gap >= 0x8000:
                if not self._is_reboot(seq, t0_us, n_sets):
                    q["duplicate_packets"] += 1
                    return
                rebooted = True
            else:
                q["packets_lost"] += gap
                seq_gap = gap
        if rebooted:
            t = self._start_segment(t0_us, host_time_s)
        # t0_us: 32-bit device clock, unwrapped by accumulating forward differences
        elif self._t_last_raw is None:
            t = t0_us
            self._t_origin = t
            self.segments.append({"first_t0_us": t0_us, "starts_at_us": 0})
        else:
            d = (t0_us - self._t_last_raw) % _WRAP
            if d >= _WRAP // 2:
                q["time_reversed_packets"] += 1
                return
            t = self._t_unwrapped + d
        self._seq = seq
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
        self._last_n_sets = n_sets
        row = int(round((t - self._t_origin) / self._period))
        if row < self._row_next:  # overlaps rows already placed: the first arrival wins
            skip = min(self._row_next - row, n_sets)
            q["overlap_samples_dropped"] += skip
            samples = samples[2 * channels * skip:]
            row, n_sets = row + skip, n_sets - skip
        if n_sets:
            self._pending.append((np.array([row]), np.array([n_sets]), samples))
            self._row_next = row + n_sets
        if host_time_s is not None:
            self._sync.add_one((self._next_t - self._period - self._t_origin) * 1e-6, host_time_s)
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
        them, or when they go back or put the gap beyond :data:`REBOOT_GAP_MAX_US`, it is
        :data:`REBOOT_GAP_UNKNOWN_US` (counted as ``reboot_gap_unknown``). The gap's slots stay missing (NaN) and are
        counted as ``reboot_gap_samples``, not as loss or device drops.
        """
        q = self.q
        q["device_reboots"] += 1
        seen_us = None if host_time_s is None or self._last_host is None \
            else (host_time_s - self._last_host) * 1e6
        if seen_us is not None and 0 <= seen_us <= REBOOT_GAP_MAX_US:
            gap_us = seen_us - self._period * (self._last_n_sets - 1)
            gap_us = max(gap_us, float(self._period))
        else:
            gap_us = float(REBOOT_GAP_UNKNOWN_US)
            q["reboot_gap_unknown"] += 1
        gap_sets = max(0, int(round(gap_us / self._period)) - 1)
        q["reboot_gap_samples"] += gap_sets
        t = self._next_t + gap_sets * self._period
        self.segments.append({"first_t0_us": t0_us, "starts_at_us": t - self._t_origin})
        return t

    # --- grid out ---------------------------------------------------------------------------

    @property
    def period_us(self) -> int | None:
        return self._period

    @property
    def t0_us(self) -> int | None:
        """Unwrapped device time of row 0 (the first sample)."""
        return self._t_origin

    @property
    def info_used(self) -> P.Info | None:
        """The INFO the grid is read with (the device's, or the stand-in); None while waiting."""
        return self._info_used

    def _choose_info(self, final: bool) -> P.Info | None:
        if self._info_used is not None:
            return self._info_used
        c = self._channels
        if self.info is not None:
            if len(self.info.zones) != c:
                raise InputFileError(f"{self.source}: INFO lists {len(self.info.zones)} zones but "
                                     f"DATA carries {c} channels")
            self._info_used = self.info
        elif final or self._row_next * self._period >= INFO_WAIT_US:
            self.q["missing_info"] += 1
            # no INFO arrived: assume the default board's zones and divider, and say so
            supply_mv, r_fixed_ohm = hardware.divider()
            zones = hardware.default_zones()
            if len(zones) != c:
                zones = P.ZONES[:c]
            self._info_used = P.Info(self._side or "left", zones, int(round(1e6 / self._period)),
                                     supply_mv, r_fixed_ohm, "000000000000", "unknown")
        return self._info_used

    def take(self, final: bool = False) -> Block | None:
        """The rows placed since the last take, NaN where nothing arrived; None if none (or if
        the zones are still unknown: INFO not yet arrived, see :data:`INFO_WAIT_US`)."""
        if self._period is None or self._row_next <= self._row_taken:
            return None
        if self._choose_info(final) is None:
            return None
        r0, r1 = self._row_taken, self._row_next
        c = self._channels
        if len(self._pending) == 1 and len(self._pending[0][0]) == 1 \
                and self._pending[0][0][0] == r0 and self._pending[0][1][0] == r1 - r0:
            # one packet that fills the rows (a live read): its samples as they are
            units = np.frombuffer(self._pending[0][2], dtype="<u2").reshape(-1, c).astype(np.uint16)
            faults, self._faults = self._faults, []
            self._pending = []
            self._row_taken = r1
            return Block(r0, units, np.ones(r1 - r0, bool), faults)
        units = np.zeros((r1 - r0, c), np.uint16)
        valid = np.zeros(r1 - r0, bool)
        rows = np.concatenate([p[0] for p in self._pending])
        lens = np.concatenate([p[1] for p in self._pending])
        raw = self._pending[0][2] if len(self._pending) == 1 else b"".join(p[2] for p in self._pending)
        samples = np.frombuffer(raw, dtype="<u2").reshape(-1, c)
        if len(rows) == 1 or (np.diff(rows) == lens[:-1]).all():
            at = slice(rows[0] - r0, rows[0] - r0 + len(samples))
        else:
            at = np.repeat(rows - r0, lens) + (np.arange(len(samples))
                                              - np.repeat(np.cumsum(lens) - lens, lens))
        units[at] = samples
        valid[at] = True
        faults, self._faults = self._faults, []
        self._pending = []
        self._row_taken = r1
        return Block(r0, units, valid, faults)

    def finish(self, decoder_errors: dict[str, int] | None = None) -> FootStream:
        """Everything not yet taken as one :class:`FootStream` (the whole grid if nothing was
        taken), with the ledger. Raises InputFileError if no DATA came at all."""
        block, q = self.close(decoder_errors)
        return foot_stream(self, block.volts if block is not None else
                           np.zeros((0, self._channels or 1)), q)

    def close(self, decoder_errors: dict[str, int] | None = None) -> tuple[Block | None, dict]:
        """The last block and the quality ledger. Raises InputFileError if no DATA came at all."""
        if self._period is None:
            raise InputFileError(f"{self.source or 'input'}: no DATA packets (not a capture, "
                                 "or the device never streamed)")
        block = self.take(final=True)
        if block is None:
            self._choose_info(True)
        return block, self.ledger(decoder_errors)

    def ledger(self, decoder_errors: dict[str, int] | None = None, samples_missing: int | None = None) -> dict:
        q = dict(self.q)
        q.setdefault("packets_lost", 0)
        q.setdefault("samples_dropped", 0)
        n = self._row_next
        q["samples_missing"] = int(n - q.get("sample_sets", 0) + q.get("overlap_samples_dropped", 0)) \
            if samples_missing is None else samples_missing
        errs = dict(decoder_errors or {})
        q["decode_errors"] = int(sum(errs.values()))
        q["decode_errors_by_kind"] = {k: v for k, v in errs.items() if v}
        q["duration_s"] = n * self._period * 1e-6
        q.setdefault("device_reboots", 0)
        if q["device_reboots"]:
            q["segments"] = [{"first_t0_us": g["first_t0_us"],
                              "starts_at_s": round(g["starts_at_us"] * 1e-6, 6)} for g in self.segments]
        if self._status_first is not None:
            q["device_overruns"] = int(self._status_last.overruns - self._status_first.overruns)
            q["device_fault_mask"] = self._fault_mask
            q["achieved_hz_median"] = _counter_median(self._achieved)
        dev, diff = self._sync.points()
        if len(dev):
            q.update(clock_estimate(np.stack([dev, diff + dev], axis=1), bin_s=self._sync.bin_s))
        return q


def _counter_median(c: Counter) -> float | None:
    if not c:
        return None
    vals = np.repeat(np.array(list(c.keys()), float), np.array(list(c.values())))
    return float(np.median(vals))


def clock_estimate(sync: np.ndarray, window_s: float | None = None, bin_s: float | None = None) -> dict:
    """Device-to-host clock offset and drift by minimum-delay filtering.

    The host receives a packet some delay after its last sample was taken; the smallest delays
    are the truest. Per window the packet with the smallest (host - device) is kept; a line is
    fitted through those, windows whose minimum still lies well above the line (a burst of
    queued packets, a stalled link) are dropped, and the line is fitted again. The residual is
    the largest distance of a kept minimum from the line.

    ``sync`` is (device s, host s) rows. By default the window is ``min(5, max(0.5, span / 30))``
    s; ``bin_s`` says the rows are already minima per bin of that width (:class:`SyncBins`):
    the window is then rounded up to whole bins (at least one), so each window's minimum is the
    one every packet would give.
    """
    dev, host = sync[:, 0], sync[:, 1]
    span = float(dev.max() - dev.min()) if len(dev) else 0.0
    if window_s is None:
        window_s = min(5.0, max(0.5, span / 30.0))
        if bin_s:  # the points are minima per bin: windows of whole bins
            window_s = float(np.ceil(window_s / bin_s - 1e-9) * bin_s)
    diff = host - dev
    win = np.floor(dev / window_s).astype(np.int64)
    order = np.lexsort((diff, win))
    first = np.ones(len(order), bool)
    first[1:] = win[order][1:] != win[order][:-1]
    sel = order[first]
    return robust_line(dev[sel], diff[sel])


def robust_line(x: np.ndarray, y: np.ndarray) -> dict:
    """The clock line through the windows' minima (device s, host - device s): fitted, the
    windows well above it dropped (three rounds at most), fitted again."""
    if len(x) < 3:
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


_DATA_HEADER = struct.Struct("<BBBBHIHB")  # PROTOCOL.md: version type flags C seq t0_us period_us N


class FootDecoder:
    """One source, incrementally: bytes (serial framing) or packets (BLE) in, grid blocks out.

    ``feed(data, host_time_s)`` takes one chunk as the source delivered it and returns the new
    grid :class:`Block` (or None); ``finish()`` returns the last block and the quality ledger.
    Every bad frame or packet is counted (``decode_errors_by_kind``), never raised.
    """

    def __init__(self, name: str = "", framing: str = FRAMING_SERIAL) -> None:
        self.name = name
        self.framing = framing
        self.assembler = FootAssembler(name)
        self.decoder = P.StreamDecoder() if framing != FRAMING_PACKETS else None
        self.errors: Counter[str] = Counter()
        self.bytes_in = 0

    def feed(self, data: bytes, host_time_s: float | None = None) -> Block | None:
        self.bytes_in += len(data)
        if self.decoder is None:
            try:
                self.assembler.add(P.decode(data), host_time_s)
            except ProtocolError as e:  # every bad packet is counted, never raised
                self.errors[e.kind] += 1
        else:
            if len(data) < 4096:  # a live read of a packet or a few: one by one is cheaper
                raws: list[bytes] = []
                self.decoder.feed_raw(data, raws, as_bytes=True)
                if raws:
                    self.errors.update(self.assembler.add_raw(raws, [host_time_s] * len(raws)))
            else:
                packed = self.decoder.feed_packed(data)
                if packed is not None:
                    self.errors.update(self.assembler.add_packed(packed, host_time_s))
        return self.assembler.take()

    def finish(self, read_errors: dict[str, int] | None = None) -> tuple[Block | None, dict]:
        errors = Counter(read_errors or {})
        errors.update(self.errors)
        if self.decoder is not None:
            self.decoder.flush()
            errors.update(self.decoder.errors)
            if self.decoder.packets == 0:
                raise InputFileError(f"{self.name}: no insole packets found in "
                                     f"{self.decoder.bytes_in} bytes (not a capture of the insole "
                                     "protocol)")
        return self.assembler.close(errors)


def streams_from_sources(sources: list[SourceData]) -> dict[str, FootStream]:
    """Decode each source into a whole foot stream; one foot per side (a second one is an error).

    For tools that need the whole grid at once (CSV export, the calibration trial, tests); the
    analysis takes the blocks as they come (:mod:`insole.analysis.core`).
    """
    feet: dict[str, FootStream] = {}
    for src in sources:
        fs = stream_from_source(src)
        if fs.side in feet:
            raise InputFileError(f"{src.name} and {feet[fs.side].source} are both the "
                                 f"{fs.side} foot; give one input per foot")
        feet[fs.side] = fs
    return feet


def stream_from_source(src: SourceData) -> FootStream:
    """One source's blocks, joined into a :class:`FootStream`."""
    dec = FootDecoder(src.name, src.framing)
    blocks = []
    for ch in src.chunks:
        b = dec.feed(ch.data, ch.host_time_s)
        if b is not None:
            blocks.append(b.volts)
    last, q = dec.finish(src.read_errors)
    if last is not None:
        blocks.append(last.volts)
    if src.link:  # the BLE link's own ledger: how often and how long it was down
        q["link_reconnects"] = int(src.link.get("reconnects", 0))
        q["link_disconnected_s"] = float(src.link.get("disconnected_s", 0.0))
    return foot_stream(dec.assembler, np.concatenate(blocks) if blocks else np.zeros((0, 1)), q)


def foot_stream(asm: FootAssembler, volts: np.ndarray, quality: dict) -> FootStream:
    info = asm.info_used
    dev, diff = asm._sync.points()
    sync = np.stack([dev, diff + dev], axis=1) if len(dev) else None
    side = info.side if asm.info is not None else (asm._side or "left")
    return FootStream(side, info, asm.period_us, asm.t0_us, volts, quality, [], sync, asm.source)
