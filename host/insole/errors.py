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


class malformed:  # noqa: N801 - used as a context manager, named for what it says
    """``with malformed("run.json: the analysis"):`` around code that reads a parsed document:
    a document of the wrong shape (a list where an object belongs, a string for a number, a
    missing key, an infinite number where an integer belongs) raises :class:`InputFileError` with one line, not a TypeError from deep inside.

    Used by the readers of JSON documents (sessions, analyses, truths) after their own checks of
    the schema, so that any shape the checks did not foresee still ends as a user error.
    """

    SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError, OverflowError)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> "malformed":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, self.SHAPE_ERRORS) \
                and not issubclass(exc_type, InsoleError):
            detail = " ".join(str(exc).split())[:120] or exc_type.__name__
            raise InputFileError(f"{self.what} is malformed ({detail})") from exc
        return False
