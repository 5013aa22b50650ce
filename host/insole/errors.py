"""One error root for the host package.

Every error a user can cause (a bad file, a missing port, a wrong option) is an
:class:`InsoleError`; the CLI prints its message on one line and exits with status 2.
"""


class InsoleError(Exception):
    """Root of every error this package raises on purpose."""


class ProtocolError(InsoleError):
    """A packet or frame that does not follow PROTOCOL.md.

    ``kind`` names the counter the stream decoder increments for it
    (``cobs``, ``crc``, ``short_frame``, ``unknown_version``, ``unknown_type``, ``bad_length``).
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class SourceError(InsoleError):
    """A source URL that cannot be opened or read (missing port, unknown scheme, ...)."""


class InputFileError(InsoleError):
    """An input file that is not a capture, a recorded session or a truth file."""
