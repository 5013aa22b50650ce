"""Put the production ``ble://`` code on the virtual radio for the length of a ``with`` block."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from insole import ble

from . import BACKEND
from .bumble_backend import HCI_ENV, close_host
from .radio import RadioThread


@contextmanager
def virtual_ble() -> Iterator[RadioThread]:
    """A virtual radio in a background thread, with ``INSOLE_BLEAK_BACKEND`` and
    ``INSOLE_BUMBLE_HCI`` pointing the production code at it; everything is undone on exit
    (the BLE loop's bumble host is closed, the sightings cache emptied, the variables restored)."""
    saved = {k: os.environ.get(k) for k in (ble.BACKEND_ENV, HCI_ENV)}
    with RadioThread() as rt:
        os.environ[ble.BACKEND_ENV] = BACKEND
        os.environ[HCI_ENV] = rt.radio.hci_spec
        try:
            yield rt
        finally:
            try:
                ble.run_ble(close_host(), 10.0)
            finally:
                ble._SEEN.clear()
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
