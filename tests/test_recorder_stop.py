"""The recorder stops on request from any thread, closes each port only after its reader has left
read(), and never leaves a thread behind (issue: a recorder that did not exit within 20 s)."""

from __future__ import annotations

import json
import threading

import pytest

from insole.io import recorder as R
from insole.io.sources import Source

pytestmark = pytest.mark.live  # threads: make test-repeat


class _Port(Source):
    """A port at the edge of the world: read() honours its timeout, like pyserial's."""

    def __init__(self, url: str, block_forever: bool = False) -> None:
        super().__init__(url)
        self.block_forever = block_forever
        self.reading = threading.Event()
        self.closed = threading.Event()
        self.closed_during_read = False
        self.sent: list[bytes] = []
        self._lock = threading.Lock()
        self._in_read = False

    def read(self, timeout_s: float = 0.1) -> bytes:
        with self._lock:
            self._in_read = True
        self.reading.set()
        # a well-behaved port returns after timeout_s; a broken one only when closed under it
        self.closed.wait(None if self.block_forever else timeout_s)
        with self._lock:
            self._in_read = False
        return b""

    def send(self, packet: bytes) -> None:
        self.sent.append(packet)

    def close(self) -> None:
        with self._lock:
            if self._in_read and not self.block_forever:
                self.closed_during_read = True
        self.closed.set()


def _run(tmp_path, ports, monkeypatch):
    it = iter(ports)
    monkeypatch.setattr(R, "open_source", lambda url: next(it))
    rec = R.Recorder([p.url for p in ports], tmp_path / "s")
    result = {}
    th = threading.Thread(target=lambda: result.update(rec.run()))
    th.start()
    for p in ports:
        assert p.reading.wait(10)
    rec.request_stop()
    th.join(30)
    assert not th.is_alive(), "run() did not return after request_stop()"
    return rec, result


def test_request_stop_ends_run_and_closes_ports_after_their_readers(tmp_path, monkeypatch):
    ports = [_Port("serial:///dev/a"), _Port("serial:///dev/b")]
    rec, result = _run(tmp_path, ports, monkeypatch)
    assert all(p.closed.is_set() and not p.closed_during_read for p in ports)
    assert not any(w.is_alive() for w in result["workers"])
    assert json.loads((tmp_path / "s" / "session.json").read_text())["closed"] is True
    # each live port was asked for INFO, as an unframed packet handed to send()
    assert all(len(p.sent) == 1 for p in ports)


def test_a_reader_stuck_in_read_is_ended_by_closing_its_port(tmp_path, monkeypatch):
    monkeypatch.setattr(R.Recorder, "JOIN_TIMEOUT_S", 0.3)
    ports = [_Port("serial:///dev/stuck", block_forever=True)]
    rec, result = _run(tmp_path, ports, monkeypatch)
    assert ports[0].closed.is_set()
    assert not any(w.is_alive() for w in result["workers"])
    assert json.loads((tmp_path / "s" / "session.json").read_text())["closed"] is True
