"""Run the real firmware under the official MicroPython WebAssembly port (firmware in the loop).

The firmware files in ``firmware/`` (or their compiled ``.mpy`` in ``build/firmware``) run
unchanged inside MicroPython 1.29 on Node; only the edge is fake (``machine`` ADC/pins/timer,
``bluetooth``, the clock and the USB serial port, in ``tools/firmware_wasm/fakes``). For a
simulated foot, the fake ADC returns the simulator's exact readings row by row, the sample timer
is fired once per row, and the bytes the firmware writes to its serial port are handed to
``write`` unchanged, so the result is a serial capture made by the firmware itself.

Needs Node and ``npm ci`` (``make setup``) in a checkout of the repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from insole.errors import InsoleError

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = ROOT / "firmware"
HARNESS_DIR = ROOT / "tools" / "firmware_wasm"
FAKES_DIR = HARNESS_DIR / "fakes"
RUNNER = HARNESS_DIR / "run.mjs"
WASM_PACKAGE = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
ZONE_NAMES = ("heel", "arch", "met1", "met23", "met5", "hallux", "midfoot_lateral")


class FirmwareLoopError(InsoleError):
    """The firmware could not be run under MicroPython (missing Node/npm package, or it failed)."""


def check_environment() -> None:
    """Raise :class:`FirmwareLoopError` saying what to install when the runner cannot work."""
    if shutil.which("node") is None:
        raise FirmwareLoopError("node not found: install Node.js 20 to run the firmware in the loop")
    if not (WASM_PACKAGE / "micropython.mjs").is_file():
        raise FirmwareLoopError(
            f"{WASM_PACKAGE} missing: run `make setup` (npm ci) in {ROOT}")
    if not RUNNER.is_file() or not FIRMWARE_DIR.is_dir():
        raise FirmwareLoopError(f"the firmware and {RUNNER.name} are only in a repository checkout")


def micropython_command(script: Path, firmware_dir: Path = FIRMWARE_DIR,
                        files: dict[str, Path] | None = None, heap_mb: int = 16,
                        drive: bool = False, realtime: bool = False,
                        speed: float = 1.0,
                        pacing: tuple[float, float, float] | None = None,
                        stdin: bool = False) -> list[str]:
    """The ``node`` command line that runs ``script`` with the firmware and fakes in /lib."""
    cmd = ["node", str(RUNNER), "--heap-mb", str(heap_mb), "--lib", str(firmware_dir),
           "--lib", str(FAKES_DIR)]
    for dest, src in (files or {}).items():
        cmd += ["--file", f"{src}:{dest}"]
    if drive:
        cmd.append("--drive")
    if stdin:
        cmd.append("--stdin")
    if realtime:
        cmd += ["--realtime", "--speed", repr(float(speed))]
        if pacing is not None:
            t0_ms, offset_ms, scale = pacing
            cmd += ["--t0-ms", repr(t0_ms), "--offset-ms", repr(offset_ms), "--scale", repr(scale)]
    cmd.append(str(script))
    return cmd


def run_micropython(script: Path, firmware_dir: Path = FIRMWARE_DIR,
                    files: dict[str, Path] | None = None, timeout_s: float = 120,
                    heap_mb: int = 16) -> subprocess.CompletedProcess:
    """Run a MicroPython script once (one node process) and return its completed process."""
    check_environment()
    return subprocess.run(micropython_command(script, firmware_dir, files, heap_mb),
                          capture_output=True, timeout=timeout_s, cwd=ROOT)


# The driver runs inside MicroPython: it boots the firmware's App from board.py on the fakes,
# then each drive_chunk() call fires the sample timer once per row of the simulated readings,
# setting the fake ADC's pin voltages first, and passes the serial bytes to stdout.
_DRIVER = r"""
import sys, machine, rig, pins
CH = __CH__
ROWS = __ROWS__
COLS = __COLS__
units = bytearray(ROWS * CH * 2)  # u16 LE readings, row-major
with open("/units.bin", "rb") as f:
    f.readinto(units)
with open("/tmp/settings.txt", "w") as f:
    f.write("side=__SIDE__\nrate_hz=__RATE__\n")
if pins.BATTERY_ADC_GPIO is not None:
    machine.set_uv(pins.BATTERY_ADC_GPIO, 2050000)  # a charged LiPo behind the divider
machine.set_unique_id(b"\xa4\xcf\x12\x00\x3f\x9a" if __SIDE__ == 0 else b"\xa4\xcf\x12\x00\x3f\x9b")
clock = rig.Clock(__START_US__)
app, port, radio = rig.make_app(clock, BLE=False, SERIAL_STREAM=True)
# The device has been up for a while: its 32-bit clock reads the simulated foot's first sample
# time one period before the first tick (white box: the firmware never sets its clock).
t_pre = (__FIRST_US__ - 1000000 // __RATE__) & 0xFFFFFFFF
app.sampler._slot_lo = t_pre & 0xFFFF
app.sampler._slot_hi = t_pre >> 16
app.start()
out = sys.stdout.buffer
gpios = pins.SENSOR_GPIOS
row = 0
drv = rig.Driver(clock, app.poll, poll_every=5)
def set_row(i):
    o = (row + i) * CH
    for c in range(len(gpios)):
        k = 2 * (o + COLS[c])
        machine.set_uv(gpios[c], (units[k] | (units[k + 1] << 8)) * 100)
CHUNK = __CHUNK__
def feed_serial(hex_bytes):
    # the host's bytes to the device's serial port (commands), from node's stdin
    from binascii import unhexlify
    port.inbox.extend(unhexlify(hex_bytes))
def drive_chunk():
    global row
    if row >= ROWS:
        # end of the run: the last partial batch goes out, as it would after a STOP
        rig.sample_timer().deinit()
        app.sampler.stop()
        app.poll()
        out.write(port.take())
        return -1
    n = min(CHUNK, ROWS - row)
    drv.run(n, set_row)
    row += n
    out.write(port.take())
    return (row * 1000) // __RATE__
"""


def run_firmware(foot, write: Callable[[bytes], None], realtime: bool = False,
                 firmware_dir: Path = FIRMWARE_DIR, start_us: int = 0,
                 timeout_s: float | None = None, speed: float = 1.0,
                 wall_t0: float | None = None, command_fd: int | None = None) -> dict:
    """Run the firmware on a simulated foot; pass every byte it writes to its serial port to ``write``.

    Args:
        foot: a ``SimFoot`` (``.units`` (n, C) uint16 readings in 100 µV, ``.info`` with
            ``zones``, ``side`` and ``rate_hz``).
        write: called with each chunk of serial bytes, in order (a pty writer or a file).
        realtime: pace the firmware to the wall clock (device time = elapsed time × ``speed``);
            otherwise as fast as MicroPython runs.
        firmware_dir: ``firmware/`` or a folder of compiled ``.mpy`` files.
        start_us: the fake clock's start (to exercise the ticks_us wrap).
        wall_t0: with ``realtime``, the wall-clock time (``time.time()``) at which the
            simulation's true time 0 falls; the foot's own start offset and clock drift are then
            honoured, so two feet run side by side as the simulator runs them.
        command_fd: a file descriptor whose bytes (the host's commands, e.g. read from a pty
            master) are passed to the firmware's serial port while it runs.

    Returns:
        dict with ``rows``, ``bytes`` written, ``rate_hz``, ``seconds`` and the node exit status.

    Raises:
        FirmwareLoopError: Node or the wasm port missing, the foot's zones not on the board, or
            the firmware failing.
    """
    check_environment()
    units = np.ascontiguousarray(foot.units, dtype="<u2")
    info = foot.info
    rows, chans = units.shape
    board_zones = _board_zones(firmware_dir)
    try:
        cols = [list(info.zones).index(z) for z in board_zones]
    except ValueError as e:
        raise FirmwareLoopError(
            f"the simulated foot has zones {info.zones}, the board {board_zones}") from e
    rate_hz = int(info.rate_hz)
    side = 1 if info.side == "right" else 0
    chunk = max(1, rate_hz // 20)  # 50 ms of samples per chunk
    src = (_DRIVER.replace("__CH__", str(chans)).replace("__ROWS__", str(rows))
           .replace("__COLS__", repr(tuple(cols))).replace("__SIDE__", str(side))
           .replace("__RATE__", str(rate_hz)).replace("__START_US__", str(int(start_us)))
           .replace("__CHUNK__", str(chunk))
           .replace("__FIRST_US__", str(int(foot.t_us[0]) & 0xFFFFFFFF if len(foot.t_us) else 0)))
    heap_mb = 16 + (units.nbytes >> 20) * 2
    total = 0
    with tempfile.TemporaryDirectory(prefix="insole-fil-") as tmp:
        script = Path(tmp) / "driver.py"
        script.write_text(src)
        data = Path(tmp) / "units.bin"
        data.write_bytes(units.tobytes())
        cmd = micropython_command(script, firmware_dir, {"/units.bin": data}, heap_mb,
                                  drive=True, realtime=realtime, speed=speed,
                                  pacing=_pacing(foot, wall_t0), stdin=command_fd is not None)
        err_path = Path(tmp) / "stderr.txt"
        # stderr to a file: a pipe nobody drains while stdout streams could block node.
        with open(err_path, "wb") as err_file, subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=err_file, cwd=ROOT,
                stdin=subprocess.PIPE if command_fd is not None else subprocess.DEVNULL) as proc:
            if command_fd is not None:
                _forward(command_fd, proc)
            try:
                assert proc.stdout is not None
                while True:
                    b = proc.stdout.read1(65536)
                    if not b:
                        break
                    total += len(b)
                    write(b)
                rc = proc.wait(timeout=timeout_s)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        err = err_path.read_text(errors="replace")
    if rc != 0:
        raise FirmwareLoopError(f"firmware under MicroPython failed (exit {rc}): {err.strip()[-2000:]}")
    return {"rows": rows, "bytes": total, "rate_hz": rate_hz, "seconds": rows / rate_hz,
            "returncode": rc}


def _forward(fd: int, proc: subprocess.Popen) -> None:
    # A daemon thread passing what the host writes (readable on fd) to node's stdin.
    import os
    import select
    import threading

    def pump() -> None:
        assert proc.stdin is not None
        while proc.poll() is None:
            try:
                if not select.select([fd], [], [], 0.1)[0]:
                    continue
                data = os.read(fd, 4096)
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return
            if not data:
                return
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                return

    threading.Thread(target=pump, name="firmware-commands", daemon=True).start()


def _pacing(foot, wall_t0: float | None) -> tuple[float, float, float] | None:
    # Device time d (ms since the first sample) is due at wall_t0 + start + d / (1 + drift).
    if wall_t0 is None:
        return None
    start_s = float(getattr(foot, "start_true_s", 0.0))
    drift_ppm = float(getattr(foot, "drift_ppm", 0.0))
    return wall_t0 * 1000.0, start_s * 1000.0, 1.0 / (1.0 + drift_ppm * 1e-6)


def _board_zones(firmware_dir: Path) -> tuple[str, ...]:
    # The board's zones, from the generated pins.py (source) or the pin map (compiled build).
    pins = FIRMWARE_DIR / "pins.py"
    ns: dict = {}
    exec(compile(pins.read_text(), str(pins), "exec"), ns)  # noqa: S102  our own generated file
    return tuple(ns["ZONE_NAMES"])


def summary_json(stats: dict) -> str:
    return json.dumps(stats, sort_keys=True)


# --- `python tools/firmware_loop.py SCENARIO ...`: the simulator's readings through the firmware ----


def run_cli(feet: dict, out: str | None, pty: bool, speed: float = 1.0) -> int:
    """The firmware, fed each simulated foot, writes the capture(s).

    With ``out``, one capture file (one foot) or ``left.bin``/``right.bin`` in a directory, as
    fast as MicroPython runs; with ``pty``, live on one pseudo-terminal per foot, paced to the
    wall clock, and what the host writes to the pty (commands) reaches the firmware's serial
    port. Transport faults of the simulator (loss, corruption) are not applied: the bytes
    are exactly what the firmware wrote. Feet run in parallel, one node process each.
    """
    import threading

    check_environment()
    sides = list(feet)
    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    import time

    wall_t0 = time.time() + 1.0  # both feet share true time 0, after node has started

    def one(side: str, write: Callable[[bytes], None], realtime: bool,
            command_fd: int | None = None) -> None:
        try:
            results[side] = run_firmware(feet[side], write, realtime=realtime, speed=speed,
                                         wall_t0=wall_t0 if realtime else None,
                                         command_fd=command_fd)
        except BaseException as e:  # noqa: BLE001  re-raised in the caller's thread
            errors.append(e)

    if pty:
        from insole.sim.pty import Pty

        ports = {s: Pty.open() for s in sides}
        try:
            for s in sides:
                print(f"{s} {ports[s].path}", flush=True)
            writers = {s: _PtyWriter(ports[s].master) for s in sides}
            threads = [threading.Thread(target=one, args=(s, writers[s].write, True,
                                                          ports[s].master), daemon=True)
                       for s in sides]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        finally:
            for p in ports.values():
                p.close(drain_s=2.0)
    else:
        if out is None:
            raise FirmwareLoopError("say where the capture goes: --out PATH or --pty")
        path = Path(out)
        if len(sides) == 1:
            targets = {sides[0]: path}
        else:
            path.mkdir(parents=True, exist_ok=True)
            targets = {s: path / f"{s}.bin" for s in sides}
        files = {s: open(targets[s], "wb") for s in sides}  # noqa: SIM115  closed below
        try:
            threads = [threading.Thread(target=one, args=(s, files[s].write, False), daemon=True)
                       for s in sides]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for f in files.values():
                f.close()
        if not errors:
            for s in sides:
                print(f"{s} {targets[s]} {results[s]['bytes']} bytes (firmware under MicroPython)")
    if errors:
        raise errors[0]
    return 0


class _PtyWriter:
    # Writes the firmware's serial bytes to a pty master; when nobody reads for 2 s the chunk
    # is dropped (as a UART with no reader would lose bytes) instead of stalling the firmware.
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.dropped_bytes = 0

    def write(self, data: bytes) -> None:
        import os
        import select

        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except OSError:
                self.dropped_bytes += len(view)
                return
            if not select.select([], [self.fd], [], 2.0)[1]:
                self.dropped_bytes += len(view)
                return


def main(argv: list[str] | None = None) -> int:
    """``python tools/firmware_loop.py SCENARIO [insole sim options]``: firmware in the loop.

    The same options as ``insole sim``; the real firmware, under MicroPython, turns the
    simulator's readings into the serial bytes that go to ``--out`` or the ``--pty`` ports.
    A repository tool, not part of the installed package: it needs ``firmware/`` and Node.
    """
    import argparse
    import sys

    from insole.cli.sim import add_arguments, feet_from_args
    from insole.errors import InsoleError

    ap = argparse.ArgumentParser(prog="firmware_loop.py", description=main.__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        feet, speed = feet_from_args(args)
        return run_cli(feet, args.out, args.pty, speed)
    except InsoleError as e:
        print(f"firmware_loop: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
