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
import math
import struct
from collections.abc import Iterable
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
    chunks: Iterable[Chunk]  # a list, or read as iterated (open_inputs)
    read_errors: dict[str, int] = field(default_factory=dict)
    url: str | None = None
    link: dict | None = None  # BLE link ledger (reconnects, seconds disconnected), if recorded


def encode_record(host_time_s: float, payload: bytes) -> bytes:
    return _REC_HEAD.pack(host_time_s, len(payload)) + payload


READ_CHUNK_BYTES = 1 << 20


def read_rec(path: Path) -> tuple[list[Chunk], dict[str, int]]:
    """Read a ``.rec`` file; a torn final record is counted, never raised."""
    errors: dict[str, int] = {}
    return list(RecChunks(path, errors)), errors


class RecChunks:
    """The records of a ``.rec`` file, read as they are iterated (the file is never held whole).

    Opening checks the header (InputFileError if it is not one); a torn final record is
    counted in ``errors["truncated_record"]`` when iteration reaches it.
    """

    def __init__(self, path: Path, errors: dict[str, int]) -> None:
        self.path = path
        self.errors = errors
        try:
            with path.open("rb") as f:
                head = f.read(len(REC_MAGIC))
        except OSError as e:
            raise InputFileError(f"{path}: cannot read ({e.strerror})") from e
        if head != REC_MAGIC:
            raise InputFileError(f"{path}: not a recorded source (missing INSREC1 header)")

    def __iter__(self):
        self.errors.pop("truncated_record", None)
        try:
            f = self.path.open("rb", buffering=READ_CHUNK_BYTES)
        except OSError as e:
            raise InputFileError(f"{self.path}: cannot read ({e.strerror})") from e
        with f:
            f.read(len(REC_MAGIC))
            hs = _REC_HEAD.size
            while True:
                head = f.read(hs)
                if not head:
                    return
                if len(head) < hs:
                    self.errors["truncated_record"] = 1
                    return
                t, ln = _REC_HEAD.unpack(head)
                data = f.read(ln)
                if len(data) < ln:
                    self.errors["truncated_record"] = 1
                    return
                yield Chunk(t, data)


class RawChunks:
    """A raw capture's bytes in pieces of :data:`READ_CHUNK_BYTES` (no host times)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self):
        try:
            f = self.path.open("rb")
        except OSError as e:
            raise InputFileError(f"{self.path}: cannot read ({e.strerror})") from e
        with f:
            while data := f.read(READ_CHUNK_BYTES):
                yield Chunk(None, data)


def load_session(path: Path) -> list[SourceData]:
    d = path if path.is_dir() else path.parent
    meta_path = d / "session.json"
    try:
        meta = json.loads(meta_path.read_text())
    except OSError as e:
        raise InputFileError(f"{d}: not a recorded session (no readable session.json)") from e
    except ValueError as e:
        raise InputFileError(f"{meta_path}: damaged ({e})") from e
    if not isinstance(meta, dict) or meta.get("schema") != SESSION_SCHEMA:
        got = meta.get("schema") if isinstance(meta, dict) else type(meta).__name__
        raise InputFileError(f"{meta_path}: schema {got!r}, expected {SESSION_SCHEMA}")
    sources = meta.get("sources", [])
    if not isinstance(sources, list):
        raise InputFileError(f"{meta_path}: 'sources' must be a list")
    out = []
    for i, src in enumerate(sources):
        name = src.get("file") if isinstance(src, dict) else None
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise InputFileError(f"{meta_path}: source {i} has no file name in this folder")
        framing = src.get("framing", FRAMING_SERIAL)
        if framing not in (FRAMING_SERIAL, FRAMING_PACKETS):
            raise InputFileError(f"{meta_path}: source {i} has framing {framing!r}, expected "
                                 f"{FRAMING_SERIAL} or {FRAMING_PACKETS}")
        link = src.get("link")
        if link is not None and not (isinstance(link, dict) and all(
                isinstance(link.get(k, 0), (int, float)) and not isinstance(link.get(k, 0), bool)
                and math.isfinite(link.get(k, 0)) for k in ("reconnects", "disconnected_s"))):
            raise InputFileError(f"{meta_path}: source {i} has a damaged 'link' ledger")
        url = src.get("url")
        errors: dict[str, int] = {}
        chunks = RecChunks(d / name, errors)
        out.append(SourceData(name, framing, chunks, errors, url if isinstance(url, str) else None,
                              link))
    if not out:
        raise InputFileError(f"{d}: session lists no sources")
    return out


def load_inputs(paths: list[str | Path]) -> list[SourceData]:
    """Like :func:`open_inputs`, with every source's chunks read into memory (a list)."""
    out = []
    for src in open_inputs(paths):
        src.chunks = list(src.chunks)
        out.append(src)
    return out


def open_inputs(paths: list[str | Path]) -> list[SourceData]:
    """Raw captures, recorded sessions and folders of captures as per-source byte streams.

    Each source's ``chunks`` is read as it is iterated (memory does not grow with the file);
    what can be checked without reading it all (the file is there, not empty, a session's
    header) is checked here. A folder is a recorded session when it holds ``session.json``;
    otherwise its ``*.bin`` captures are read (``insole sim --side both --out DIR`` writes
    ``left.bin`` and ``right.bin``).
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
            out.extend(open_inputs(captures))
            continue
        if path.is_dir() or path.name == "session.json":
            out.extend(load_session(path))
            continue
        if not path.exists():
            raise InputFileError(f"{path}: no such file")
        try:
            with path.open("rb") as f:
                head = f.read(len(REC_MAGIC))
        except OSError as e:
            raise InputFileError(f"{path}: cannot read ({e.strerror})") from e
        if not head:
            raise InputFileError(f"{path}: empty file, not a capture")
        if head == REC_MAGIC:
            errors: dict[str, int] = {}
            out.append(SourceData(path.name, FRAMING_SERIAL, RecChunks(path, errors), errors))
        else:
            out.append(SourceData(path.name, FRAMING_SERIAL, RawChunks(path)))
    return out
