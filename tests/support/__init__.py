"""Test support: a virtual BLE radio on bumble, a bleak backend on it, and virtual insoles.

- :mod:`tests.support.radio`: one bumble ``LocalLink`` that peripherals join in-process and that
  each host process joins over HCI on TCP (127.0.0.1 only), with a controller of its own.
- :mod:`tests.support.bumble_backend`: a bleak scanner and client on a bumble host, chosen by the
  production code through ``INSOLE_BLEAK_BACKEND`` (see :mod:`insole.ble`).
- :mod:`tests.support.virtual_insole`: an insole peripheral serving the GATT table of
  PROTOCOL.md, fed by the simulator (fast, with ground truth).
- :mod:`tests.support.firmware_peripheral`: the real firmware under the MicroPython WebAssembly
  port, its ``bluetooth`` fake bridged to a bumble GATT server; pairing runs in bumble with the
  firmware as its key store.
- :mod:`tests.support.pairing`: a plain bumble central that pairs, bonds (JSON key store) and
  reconnects with its keys: the runner's laptop or a stranger, below the ``ble://`` code.
"""

BACKEND = ("tests.support.bumble_backend:BumbleScanner,"
           "tests.support.bumble_backend:BumbleClient")
