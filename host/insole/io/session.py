"""The recorded-session format (``insole.session/1``) and input loading for every host tool.

A session is a directory::

    session.json      what was recorded: sources, framing, start/end, closed cleanly or not
    source0.rec       one file per source, append-only records
    source1.rec

A ``.rec`` file starts with the 8 bytes ``b"INSREC1\\n"`` and then holds records
``<f64 host_time_s><u32 length><payload>`` (little-endian). For a serial source a payload is a
chunk of raw bytes exactly as read from the port (frames, damage and all); for a BLE source it is
one notification (one unframed packet). The recorder appends and flushes at least once a second,
so a killed recorder loses at most the last second; a torn last record is detected, counted as
``truncated_record`` and skipped.

Inputs to the tools are either such a directory (or its ``session.json``) or a raw capture: the
bytes of a serial stream as they came off the port.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from insole.errors import InputFileError

REC_MAGIC = b"INSREC1\n"
_REC_HEAD = struct.Struct("<dI")
SESSION_SCHEMA = "insole.session/1"
FRAMING_SERIAL = "serial"
FRAMING_PACKETS = "packets"


@dataclass
class Chunk:
    host_time_s: float | None
    data: bytes


@dataclass
class SourceData:
    """Everything one source delivered: byte chunks (serial) or packets (BLE), with host times."""

    name: str
    framing: str
    chunks: list[Chunk]
    read_errors: dict[str, int] = field(default_factory=dict)
    url: str | None = None
    link: dict | None = None  # BLE link ledger (reconnects, seconds disconnected), if recorded


def encode_record(host_time_s: float, payload: bytes) -> bytes:
    return _REC_HEAD.pack(host_time_s, len(payload)) + payload


def read_rec(path: Path) -> tuple[list[Chunk], dict[str, int]]:
    """Read a ``.rec`` file; a torn final record is counted, never raised."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputFileError(f"{path}: cannot read ({e.strerror})") from e
    if not raw.startswith(REC_MAGIC):
        raise InputFileError(f"{path}: not a recorded source (missing INSREC1 header)")
    chunks: list[Chunk] = []
    errors: dict[str, int] = {}
    pos = len(REC_MAGIC)
    n = len(raw)
    while pos < n:
        if pos + _REC_HEAD.size > n:
            errors["truncated_record"] = errors.get("truncated_record", 0) + 1
            break
        t, ln = _REC_HEAD.unpack_from(raw, pos)
        pos += _REC_HEAD.size
        if pos + ln > n:
            errors["truncated_record"] = errors.get("truncated_record", 0) + 1
            break
        chunks.append(Chunk(t, raw[pos:pos + ln]))
        pos += ln
    return chunks, errors


def load_session(path: Path) -> list[SourceData]:
    d = path if path.is_dir() else path.parent
    meta_path = d / "session.json"
    try:
        meta = json.loads(meta_path.read_text())
    except OSError as e:
        raise InputFileError(f"{d}: not a recorded session (no readable session.json)") from e
    except ValueError as e:
        raise InputFileError(f"{meta_path}: damaged ({e})") from e
    if meta.get("schema") != SESSION_SCHEMA:
        raise InputFileError(f"{meta_path}: schema {meta.get('schema')!r}, expected {SESSION_SCHEMA}")
    out = []
    for src in meta.get("sources", []):
        chunks, errors = read_rec(d / src["file"])
        out.append(SourceData(src["file"], src.get("framing", FRAMING_SERIAL), chunks, errors,
                              src.get("url"), src.get("link")))
    if not out:
        raise InputFileError(f"{d}: session lists no sources")
    return out


def load_inputs(paths: list[str | Path]) -> list[SourceData]:
    """Load raw captures, recorded sessions and folders of captures into per-source byte streams.

    A folder is a recorded session when it holds ``session.json``; otherwise its ``*.bin``
    captures are read (``insole sim --side both --out DIR`` writes ``left.bin`` and ``right.bin``).
    """
    out: list[SourceData] = []
    for p in paths:
        path = Path(p)
        if str(p).startswith("file://"):
            path = Path(str(p)[len("file://"):])
        elif "://" in str(p):
            raise InputFileError(f"{p}: this command reads recorded sessions and captures; "
                                 f"record the source first (insole record {p} --out DIR)")
        if path.is_dir() and not (path / "session.json").exists():
            captures = sorted(path.glob("*.bin"))
            if not captures:
                raise InputFileError(f"{path}: neither a recorded session (no session.json) nor "
                                     "a folder of captures (no *.bin)")
            out.extend(load_inputs(captures))
            continue
        if path.is_dir() or path.name == "session.json":
            out.extend(load_session(path))
            continue
        if not path.exists():
            raise InputFileError(f"{path}: no such file")
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise InputFileError(f"{path}: cannot read ({e.strerror})") from e
        if not raw:
            raise InputFileError(f"{path}: empty file, not a capture")
        if raw.startswith(REC_MAGIC):
            chunks, errors = read_rec(path)
            out.append(SourceData(path.name, FRAMING_SERIAL, chunks, errors))
        else:
            out.append(SourceData(path.name, FRAMING_SERIAL, [Chunk(None, raw)]))
    return out
