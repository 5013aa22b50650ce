"""Fuzz the decoder and every file reader with random and mutated inputs (``make fuzz``).

Each target takes one input (bytes) and feeds it to one reader of the package: the frame and
packet decoders, a raw capture (decoded, and analysed end to end), a session's ``.rec`` file and
``session.json``, a calibration file, a bench table, the two public data sets' files, an analysis
document read back (``insole compare``'s reader, ``insole score``'s, the history's), a truth
file. Inputs are mutations of real valid inputs made here from the simulator and the package's
own writers (bit flips, byte changes, truncation, splices of two inputs, repeated and deleted
chunks, random bytes; for JSON also a value changed deep inside the parsed document; for captures
also a packet's bytes changed under a valid frame and CRC, so the packet decoder and the
assembler see them), plus wholly random bytes.

A reader may raise only the documented one-line errors (:class:`insole.errors.InsoleError` and
its subclasses, with a message of one line); anything else is a crash: the input is saved to
``--out`` and the run exits 1. Prints the inputs per second and the outcome counts per target.

    python tools/fuzz.py --n 1000000 [--seed S] [--out DIR] [--only TARGET,...]

Why a mutation loop and hypothesis rather than a coverage-guided fuzzer (atheris): see
docs/validation.md, "Faults and fuzzing".
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from insole import protocol as P
from insole.errors import InsoleError

# --- seeds: real valid inputs --------------------------------------------------------------


def _capture(duration_s: float = 3.0, seed: int = 2, side: str = "left", **faults) -> bytes:
    from insole.sim import simulate
    from insole.sim.device import capture_bytes

    return capture_bytes(simulate("easy-run", side, duration_s, seed=seed, **faults))


@dataclass
class Seeds:
    captures: list[bytes]
    packets: list[bytes]
    recs: list[bytes]
    sessions: list[bytes]
    calibrations: list[bytes]
    bench_tables: list[bytes]
    gaitpdb: list[bytes]
    fukuchi: list[bytes]
    analyses: list[bytes]
    truths: list[bytes]


def make_seeds() -> Seeds:
    from insole.analysis.document import analyse_paths
    from insole.io.session import REC_MAGIC, SESSION_SCHEMA, encode_record
    from insole.model.calibration import Calibration
    from insole.sim import simulate, truth_document

    # short captures (0.4-1.2 s: INFO, DATA, STATUS), so that an input takes milliseconds
    caps = [_capture(1.2), _capture(0.4, 3, "right", loss_pct=5, corrupt_pct=2),
            _capture(1.1, 4, overrun_at=(0.5,), disconnect_sensor="heel", disconnect_at_s=0.3),
            _capture(0.5, 5)]
    raws: list = []
    P.StreamDecoder().feed_raw(caps[2], raws, as_bytes=True)
    packets = raws[:3] + [P.encode(P.Reply(0x10, 0))]
    recs = []
    for c in caps[:2]:
        recs.append(REC_MAGIC + b"".join(encode_record(1.7e9 + i * 0.05, c[a:a + 700])
                                         for i, a in enumerate(range(0, len(c), 700))))
    meta = {"schema": SESSION_SCHEMA, "created": "2026-12-01T10:00:00.000+00:00",
            "recorder": "insole fuzz", "closed": True,
            "sources": [{"url": "serial:///dev/ttyUSB0", "file": "source0.rec", "framing": "serial",
                         "side": "left", "bytes": len(caps[0]), "ended": None, "fault": None,
                         "link": {"disconnects": 1, "reconnects": 1, "disconnected_s": 1.5}}]}
    cal = Calibration("left", {z: (4.0e5 * (1 + 0.1 * i), 1.0 + 0.05 * i)
                               for i, z in enumerate(("heel", "arch", "met1", "met23", "met5"))},
                      "standing", "a1b2c3d4e5f6", "2026-12-01T10:00:00Z", 70.0, 3.2,
                      {"heel": 12.0}, {}, "fuzz seed")
    bench = ("# zone,mass_kg,ohms\nzone,mass_kg,ohms\nheel,1,30000\nheel,5,6000\nheel,10,3100\n"
             "arch,2,15000\narch,8,3900\n")
    bench_v = "zone,force_n,volts\nmet1,10,0.8\nmet1,50,1.9\nmet1,100,2.4\n"
    rng = np.random.default_rng(1)
    gp = "\n".join("\t".join(f"{v:.3f}" for v in [i / 100, *rng.uniform(0, 300, 18)])
                   for i in range(60))
    fk = "Time\tFx\tFy\tFz\tCOPx\tCOPy\tCOPz\tTy\n" + "\n".join(
        "\t".join(f"{v:.4f}" for v in [i / 300, *rng.uniform(-50, 1500, 7)]) for i in range(90))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.bin"
        p.write_bytes(caps[0])
        doc = analyse_paths([str(p)])
    feet = {"left": simulate("easy-run", "left", 3.0, seed=2)}
    truth = truth_document(feet)
    return Seeds(caps, packets, recs, [json.dumps(meta).encode()], [json.dumps(cal.to_dict()).encode()],
                 [bench.encode(), bench_v.encode()], [gp.encode()], [fk.encode()],
                 [json.dumps(doc).encode()], [json.dumps(truth).encode()])


# --- mutations ------------------------------------------------------------------------------


def mutate_bytes(r: random.Random, data: bytes, others: list[bytes]) -> bytes:
    """One to four byte-level mutations of ``data`` (others: inputs to splice with)."""
    b = bytearray(data)
    for _ in range(r.randint(1, 4)):
        op = r.randrange(9)
        n = len(b)
        if op == 0 and n:  # bit flips
            for _ in range(r.randint(1, 8)):
                i = r.randrange(n)
                b[i] ^= 1 << r.randrange(8)
        elif op == 1 and n:  # bytes set to interesting values
            for _ in range(r.randint(1, 4)):
                b[r.randrange(n)] = r.choice((0, 1, 0x7F, 0x80, 0xFF, r.randrange(256)))
        elif op == 2:  # truncation
            b = b[:r.randint(0, n)]
        elif op == 3 and n:  # drop the start
            b = b[r.randint(0, n):]
        elif op == 4:  # splice with another input
            o = r.choice(others)
            b = b[:r.randint(0, n)] + o[r.randint(0, len(o)):]
        elif op == 5 and n:  # a chunk repeated
            a = r.randrange(n)
            c = b[a:a + r.randint(1, 512)]
            b[a:a] = c * r.randint(1, 4)
        elif op == 6 and n:  # a chunk deleted
            a = r.randrange(n)
            del b[a:a + r.randint(1, 512)]
        elif op == 7:  # random bytes inserted
            a = r.randint(0, n)
            b[a:a] = r.randbytes(r.randint(1, 64))
        elif op == 8 and n:  # chunks swapped
            a, c = sorted(r.randrange(n) for _ in range(2))
            k = r.randint(1, 256)
            b = b[:a] + b[c:c + k] + b[a + k:c] + b[a:a + k] + b[c + k:]
    return bytes(b)


def mutate_packets(r: random.Random, data: bytes) -> bytes:
    """Change bytes inside some packets of a capture and frame them again with a valid CRC
    (so the packet decoder and the assembler see them); repeat, drop or rotate frames."""
    frames = [f + b"\x00" for f in data.split(b"\x00")[:-1]]
    if not frames:
        return data
    out = []
    for fr in frames:
        if r.random() < 0.15:
            try:
                raw = bytearray(P.unframe(fr[:-1]))
            except InsoleError:  # a damaged frame of the seed: change its bytes as they are
                raw = bytearray(fr[:-1])
            for _ in range(r.randint(1, 3)):
                op = r.randrange(4)
                if op == 0 and raw:
                    raw[r.randrange(len(raw))] = r.randrange(256)
                elif op == 1 and raw:
                    i = r.randrange(len(raw))
                    raw[i] ^= 1 << r.randrange(8)
                elif op == 2:
                    raw = raw[:r.randint(0, len(raw))]
                else:
                    raw += r.randbytes(r.randint(1, 16))
            fr = P.frame(bytes(raw)) if raw else b""
        elif r.random() < 0.02:
            continue  # a frame dropped
        out.append(fr)
        if r.random() < 0.02:
            out.append(fr)  # a frame repeated
    if out and r.random() < 0.3:
        a = r.randrange(len(out))
        out = out[a:] + out[:a]  # time runs back: a reboot, or a splice
    return b"".join(out)


_WEIRD = (None, True, False, 0, -1, 1, 2**31, -(2**63), 2**70, 1e308, -1e-308, 0.5, math.nan,
          math.inf, "", "x", "left", "right", "heel", [], {}, [1, 2], {"a": 1}, [None], "1e999")


def mutate_json(r: random.Random, data: bytes) -> bytes:
    """Parse, change one to three values deep inside (type, delete, duplicate), dump again."""
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    for _ in range(r.randint(1, 3)):
        path = []
        node = doc
        while isinstance(node, (dict, list)) and node and r.random() < 0.85:
            key = r.choice(list(node)) if isinstance(node, dict) else r.randrange(len(node))
            path.append((node, key))
            node = node[key]
        if not path:
            doc = copy.deepcopy(r.choice(_WEIRD))
            continue
        parent, key = path[-1]
        op = r.randrange(4)
        if op == 0 and isinstance(parent, dict):
            del parent[key]
        elif op == 1 and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(r.choice(parent)))  # a copy: no cycles
        elif op == 2 and isinstance(node, (int, float)) and not isinstance(node, bool):
            parent[key] = r.choice((node * -1, node * 1e6, 0, node + 1, math.nan))
        else:
            parent[key] = copy.deepcopy(r.choice(_WEIRD))
    return json.dumps(doc).encode()


# --- targets --------------------------------------------------------------------------------


class Crash(Exception):
    """A reader raised something other than a documented one-line error."""


@dataclass
class Target:
    name: str
    seeds: Callable[[Seeds], list[bytes]]
    run: Callable[[bytes, Path], object]
    json: bool = False
    packets: bool = False


def _t_stream(data: bytes, d: Path) -> None:
    dec = P.StreamDecoder()
    r = random.Random(len(data))
    i = 0
    while i < len(data):
        k = r.randint(1, 300)
        dec.feed(data[i:i + k])
        i += k
    dec.flush()


def _t_packet(data: bytes, d: Path) -> None:
    P.PacketDecoder().feed(data)
    P.decode(data)  # ProtocolError (an InsoleError) for a bad packet


def _t_foot_decoder(data: bytes, d: Path) -> None:
    from insole.analysis.stream import FootDecoder

    dec = FootDecoder("fuzz")
    for a in range(0, len(data), 997):
        dec.feed(data[a:a + 997], 1.7e9 + a / 20000)
    dec.finish()


def _t_ble_packets(data: bytes, d: Path) -> None:
    from insole.analysis.stream import FootDecoder
    from insole.io.session import FRAMING_PACKETS

    dec = FootDecoder("fuzz", FRAMING_PACKETS)
    raws: list = []
    P.StreamDecoder().feed_raw(data, raws, as_bytes=True)
    for i, raw in enumerate(raws or [data]):
        dec.feed(raw, 1.7e9 + i * 0.05)
    dec.finish()


def _write(d: Path, name: str, data: bytes) -> Path:
    p = d / name
    p.write_bytes(data)
    return p


def _t_capture_analysis(data: bytes, d: Path) -> None:
    from insole.analysis.document import run_paths

    p = _write(d, "capture.bin", data)
    run_paths([str(p)]).write_json(io.BytesIO())


def _t_rec(data: bytes, d: Path) -> None:
    from insole.io.session import read_rec

    read_rec(_write(d, "source0.rec", data))


def _session(d: Path, meta: bytes, rec: bytes) -> Path:
    s = d / "session"
    s.mkdir(exist_ok=True)
    (s / "session.json").write_bytes(meta)
    (s / "source0.rec").write_bytes(rec)
    return s


def _t_session(data: bytes, d: Path) -> None:
    from insole.analysis.stream import streams_from_sources
    from insole.io.session import load_inputs

    streams_from_sources(load_inputs([_session(d, data, seeds().recs[0])]))


def _t_session_rec(data: bytes, d: Path) -> None:
    from insole.analysis.stream import streams_from_sources
    from insole.io.session import load_inputs

    streams_from_sources(load_inputs([_session(d, seeds().sessions[0], data)]))


def _t_calibration(data: bytes, d: Path) -> None:
    from insole.model import calibration

    calibration.load(_write(d, "cal.json", data))


def _t_bench(data: bytes, d: Path) -> None:
    from insole.model import fits

    fits.read_bench_table(_write(d, "bench.csv", data), 3300.0, 10000.0)


def _t_gaitpdb(data: bytes, d: Path) -> None:
    from insole.validation import datasets

    datasets.load_gaitpdb(_write(d, "GaPt03_01.txt", data))


def _t_fukuchi(data: bytes, d: Path) -> None:
    from insole.validation import datasets

    datasets.load_fukuchi(_write(d, "RBDS001runT25forces.txt", data))


def _t_analysis_compare(data: bytes, d: Path) -> None:
    from insole.compare.compare import compare_runs, load_run

    doc, _ = load_run(_write(d, "run.json", data))
    compare_runs(doc, doc)


def _t_analysis_score(data: bytes, d: Path) -> None:
    from insole.validation.score import score

    doc = _json_file(data)
    score(doc, json.loads(seeds().truths[0]))


def _t_truth_score(data: bytes, d: Path) -> None:
    from insole.validation.score import score

    score(json.loads(seeds().analyses[0]), _json_file(data))


def _t_analysis_history(data: bytes, d: Path) -> None:
    from insole.history.ingest import find_runs, run_record

    jobs, _ = find_runs([str(_write(d, "run.json", data))])
    for job in jobs:
        run_record(json.loads(data), "2026-12-01T10:00:00+00:00", job.paths[0])


def _json_file(data: bytes):
    """What ``insole score`` does with a file: JSON, or its one-line error."""
    from insole.errors import InputFileError

    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputFileError(f"not JSON ({e})") from e


TARGETS = [
    Target("stream_decoder", lambda s: s.captures, _t_stream, packets=True),
    Target("packet_decoder", lambda s: s.packets, _t_packet),
    Target("foot_decoder", lambda s: s.captures, _t_foot_decoder, packets=True),
    Target("ble_packets", lambda s: s.captures, _t_ble_packets, packets=True),
    Target("capture_analysis", lambda s: s.captures, _t_capture_analysis, packets=True),
    Target("rec_file", lambda s: s.recs, _t_rec),
    Target("session_json", lambda s: s.sessions, _t_session, json=True),
    Target("session_rec", lambda s: s.recs, _t_session_rec),
    Target("calibration", lambda s: s.calibrations, _t_calibration, json=True),
    Target("bench_table", lambda s: s.bench_tables, _t_bench),
    Target("gaitpdb", lambda s: s.gaitpdb, _t_gaitpdb),
    Target("fukuchi", lambda s: s.fukuchi, _t_fukuchi),
    Target("analysis_compare", lambda s: s.analyses, _t_analysis_compare, json=True),
    Target("analysis_score", lambda s: s.analyses, _t_analysis_score, json=True),
    Target("analysis_history", lambda s: s.analyses, _t_analysis_history, json=True),
    Target("truth_score", lambda s: s.truths, _t_truth_score, json=True),
]
BY_NAME = {t.name: t for t in TARGETS}
WEIGHTS = {"stream_decoder": 4, "packet_decoder": 4}
_SEEDS: Seeds | None = None


def seeds() -> Seeds:
    global _SEEDS
    if _SEEDS is None:
        _SEEDS = make_seeds()
    return _SEEDS


def make_input(t: Target, r: random.Random) -> bytes:
    """One input for target ``t``: random bytes (5 %) or a mutation of one of its seeds."""
    pool = t.seeds(seeds())
    x = r.random()
    if x < 0.05:
        return r.randbytes(r.randint(0, 2048))
    base = r.choice(pool)
    if t.json and x < 0.6:
        return mutate_json(r, base)
    if t.packets and x < 0.5:
        return mutate_packets(r, base)
    return mutate_bytes(r, base, [p for q in (seeds().captures, pool) for p in q])


def check(t: Target, data: bytes, d: Path) -> str:
    """Run one input; the outcome's name (``ok`` or the error's class and kind), or Crash."""
    try:
        with warnings_as_errors():
            t.run(data, d)
    except InsoleError as e:
        msg = str(e)
        if "\n" in msg or not msg.strip():
            raise Crash(f"{type(e).__name__} with a message that is not one line: {msg!r}") from e
        kind = getattr(e, "kind", None)
        return type(e).__name__ + (f":{kind}" if kind else "")
    except Exception as e:  # noqa: BLE001 - that is what is looked for
        raise Crash(f"{type(e).__name__}: {e}") from e
    return "ok"


@contextlib.contextmanager
def warnings_as_errors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="ignore"):
            yield


def _where(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    return f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"


def run(n: int, seed: int, out: Path, only: list[str] | None = None, echo=print,
        keep_going: bool = False) -> dict:
    """``n`` inputs over the targets in turn; returns {target: {outcome: count}} and rates.
    Stops at the first crash, or (``keep_going``) saves the first input of each distinct crash
    (target, error type, where raised) and goes on."""
    targets = [BY_NAME[x] for x in only] if only else TARGETS
    # the decoders see every byte a port delivers: four times the share of each file reader
    targets = [t for t in targets for _ in range(WEIGHTS.get(t.name, 1))]
    r = random.Random(seed)
    counts = {t.name: Counter() for t in targets}
    secs = dict.fromkeys(counts, 0.0)
    t_all = time.perf_counter()
    last = t_all
    crashes: dict = {}
    with tempfile.TemporaryDirectory(prefix="insole-fuzz-") as tmp:
        d = Path(tmp)
        for i in range(n):
            t = targets[i % len(targets)]
            data = make_input(t, r)
            t0 = time.perf_counter()
            try:
                outcome = check(t, data, d)
            except Crash as e:
                cause = e.__cause__ or e
                sig = (t.name, type(cause).__name__, _where(cause))
                counts[t.name]["CRASH"] += 1
                if sig in crashes:
                    continue
                out.mkdir(parents=True, exist_ok=True)
                path = out / f"crash-{t.name}-{seed}-{i}.bin"
                path.write_bytes(data)
                crashes[sig] = {"target": t.name, "input": str(path), "error": str(e)[:300],
                                "where": sig[2]}
                echo(f"CRASH in {t.name} (input {i}, seed {seed}): {str(e)[:300]}\n"
                     f"  input saved to {path}")
                echo("".join(traceback.format_exception(cause)))
                if not keep_going:
                    return {"crash": crashes[sig], "crashes": list(crashes.values()),
                            "counts": counts}
                continue
            secs[t.name] += time.perf_counter() - t0
            counts[t.name][outcome] += 1
            now = time.perf_counter()
            if now - last > 30:
                last = now
                echo(f"  {i + 1} inputs, {(i + 1) / (now - t_all):.0f} inputs/s", file=sys.stderr)
    total_s = time.perf_counter() - t_all
    if crashes:
        return {"crash": next(iter(crashes.values())), "crashes": list(crashes.values()),
                "counts": counts}
    return {"inputs": n, "seconds": total_s, "inputs_per_s": n / total_s, "counts": counts,
            "target_inputs_per_s": {k: sum(counts[k].values()) / max(secs[k], 1e-9) for k in counts}}


def _job(args) -> dict:
    n, seed, out, only, keep_going = args
    seeds()
    return run(n, seed, out, only, keep_going=keep_going)


def run_jobs(n: int, seed: int, out: Path, only, keep_going: bool, jobs: int) -> dict:
    """:func:`run` in ``jobs`` processes (seeds ``seed + j``), the counts added up."""
    if jobs == 1:
        return run(n, seed, out, only, keep_going=keep_going)
    import multiprocessing

    seeds()  # made once, inherited by the forked workers
    parts = [(n // jobs + (j < n % jobs), seed + j, out, only, keep_going) for j in range(jobs)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        results = pool.map(_job, parts)
    total_s = time.perf_counter() - t0
    counts = {}
    for r in results:
        for name, c in r["counts"].items():
            counts.setdefault(name, Counter()).update(c)
    crashes = [c for r in results for c in r.get("crashes", [])]
    if crashes:
        return {"crash": crashes[0], "crashes": crashes, "counts": counts}
    # per target: inputs per second of one process's time in it, as in run()
    rates = {k: sum(r["counts"][k].total() for r in results)
             / sum(r["counts"][k].total() / max(r["target_inputs_per_s"][k], 1e-9) for r in results)
             for k in counts}
    return {"inputs": n, "seconds": total_s, "inputs_per_s": n / total_s, "counts": counts,
            "target_inputs_per_s": rates, "jobs": jobs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=int(os.environ.get("FUZZ_N", 1_000_000)))
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    ap.add_argument("--out", default="build/fuzz", help="where a crashing input is saved")
    ap.add_argument("--only", default=None, help="comma-separated targets: " + ", ".join(BY_NAME))
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", os.cpu_count() or 1)),
                    help="processes, each with its own seed (seed, seed+1, ...)")
    ap.add_argument("--keep-going", action="store_true",
                    help="save the first input of each distinct crash and go on")
    a = ap.parse_args(argv)
    only = a.only.split(",") if a.only else None
    for x in only or ():
        if x not in BY_NAME:
            ap.error(f"unknown target {x!r}")
    print(f"fuzz: {a.n} inputs, seed {a.seed}, targets: {', '.join(only or BY_NAME)}", flush=True)
    res = run_jobs(a.n, a.seed, Path(a.out), only, a.keep_going, max(1, a.jobs))
    if "crash" in res:
        for c in res["crashes"]:
            print(f"crash: {c['target']} at {c['where']}: {c['error']} ({c['input']})")
        return 1
    print(f"{res['inputs']} inputs in {res['seconds']:.1f} s with {res.get('jobs', 1)} process(es): "
          f"{res['inputs_per_s']:.0f} inputs/s; no crash")
    for name, c in res["counts"].items():
        outcomes = ", ".join(f"{k} {v}" for k, v in c.most_common())
        print(f"  {name:18s} {sum(c.values()):8d} inputs, {res['target_inputs_per_s'][name]:9.0f}/s: "
              f"{outcomes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
