"""Device commands over any source: send one, wait for its REPLY (PROTOCOL.md, commands).

Sans-CLI: :func:`parse_command` turns words (``start``, ``rate 200``, ``side right``...) into a
:class:`~insole.protocol.Command`; :func:`send_command` sends it over an open source and reads
until the device's REPLY to it arrives, keeping every other packet it sees on the way (INFO,
STATUS, DATA) for the caller. A device that does not answer within the timeout, or answers with
an error code, raises :class:`CommandError` with a one-line message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from insole import protocol as P
from insole.errors import InsoleError, ProtocolError
from insole.io.session import FRAMING_SERIAL
from insole.io.sources import Source

#: what a person types → (command, number of arguments)
COMMAND_WORDS = {
    "start": P.CMD_START, "stop": P.CMD_STOP, "rate": P.CMD_SET_RATE, "identify": P.CMD_IDENTIFY,
    "side": P.CMD_SET_SIDE, "info": P.CMD_GET_INFO, "forget-bonds": P.CMD_FORGET_BONDS,
}
REPLY_MEANING = {
    P.REPLY_OK: "ok",
    P.REPLY_UNKNOWN_COMMAND: "the firmware does not know this command (update the firmware)",
    P.REPLY_BAD_LENGTH: "the command's length was wrong (a host/firmware version mismatch)",
    P.REPLY_OUT_OF_RANGE: "the value is out of range",
    P.REPLY_BUSY: "the device is busy; try again",
}
DEFAULT_TIMEOUT_S = 2.0


class CommandError(InsoleError):
    """A command the device did not accept, or did not answer."""


@dataclass
class CommandResult:
    """The device's REPLY to one command and the other packets read while waiting for it."""

    command: P.Command
    reply: P.Reply
    seen: list = field(default_factory=list)

    def latest(self, kind: type) -> object | None:
        """The last packet of ``kind`` (e.g. ``P.Info``) seen while waiting, or None."""
        found = [p for p in self.seen if isinstance(p, kind)]
        return found[-1] if found else None


def parse_command(words: list[str]) -> P.Command:
    """``["rate", "200"]`` → ``Command(CMD_SET_RATE, (200,))``; a one-line error for anything else."""
    if not words:
        raise CommandError(f"say which command: {', '.join(COMMAND_WORDS)}")
    name, args = words[0].lower(), words[1:]
    if name not in COMMAND_WORDS:
        raise CommandError(f"unknown command {words[0]!r}; known: {', '.join(COMMAND_WORDS)}")
    cmd = COMMAND_WORDS[name]
    if cmd == P.CMD_SET_RATE:
        if len(args) != 1:
            raise CommandError(f"rate takes one number of Hz ({P.RATE_MIN_HZ}-{P.RATE_MAX_HZ})")
        try:
            hz = int(args[0])
        except ValueError:
            raise CommandError(f"rate: {args[0]!r} is not a whole number of Hz") from None
        if not P.RATE_MIN_HZ <= hz <= P.RATE_MAX_HZ:
            raise CommandError(f"rate {hz} Hz is outside {P.RATE_MIN_HZ}-{P.RATE_MAX_HZ} Hz")
        return P.Command(cmd, (hz,))
    if cmd == P.CMD_SET_SIDE:
        if len(args) != 1 or args[0].lower() not in P.SIDES:
            raise CommandError("side takes left or right")
        return P.Command(cmd, (P.SIDES.index(args[0].lower()),))
    if args:
        raise CommandError(f"{name} takes no arguments")
    return P.Command(cmd)


def send_command(source: Source, cmd: P.Command, timeout_s: float = DEFAULT_TIMEOUT_S,
                 after_reply_s: float = 0.0) -> CommandResult:
    """Send ``cmd`` over an open ``source`` and wait for its REPLY.

    Args:
        source: an open source that accepts commands (serial, BLE).
        cmd: the command.
        timeout_s: how long to wait for the REPLY.
        after_reply_s: keep reading this long after the REPLY (GET_INFO: the INFO follows it).

    Returns:
        the REPLY and every other packet seen.

    Raises:
        CommandError: no REPLY within ``timeout_s``, or a REPLY with an error code.
        SourceError / SourceClosed: the source cannot send, or went away.
    """
    source.send(P.encode(cmd))
    decoder = P.StreamDecoder() if source.framing == FRAMING_SERIAL else None
    seen: list = []
    reply: P.Reply | None = None
    deadline = time.monotonic() + timeout_s
    while True:
        now = time.monotonic()
        if reply is None and now >= deadline:
            name = P.COMMANDS.get(cmd.command, hex(cmd.command))
            raise CommandError(f"{source.url}: no reply to {name} within {timeout_s:g} s "
                               "(is the insole on, and this its port?)")
        if reply is not None and now >= deadline:
            break
        data = source.read(min(0.1, max(0.001, deadline - now)))
        if not data:
            continue
        if decoder is not None:
            packets = decoder.feed(data)
        else:
            try:
                packets = [P.decode(data)]
            except ProtocolError:
                continue
        for pkt in packets:
            if reply is None and isinstance(pkt, P.Reply) and pkt.command == cmd.command:
                reply = pkt
                deadline = time.monotonic() + after_reply_s
            else:
                seen.append(pkt)
    if reply.code != P.REPLY_OK:
        name = P.COMMANDS.get(cmd.command, hex(cmd.command))
        meaning = REPLY_MEANING.get(reply.code, f"error code {reply.code}")
        raise CommandError(f"{source.url}: the insole refused {name}: {meaning}")
    return CommandResult(cmd, reply, seen)
