# User settings of the firmware: edit before `make deploy`.

FIRMWARE_VERSION = "1.0.0"

# Stream framed packets on the USB serial port (PROTOCOL.md "Serial framing"). While on, the
# port carries binary frames, not the REPL: press the BOOT button (GPIO0) within a second after
# reset (not during it: that enters the ROM bootloader) to start with the firmware off and the
# REPL free (e.g. for `make deploy`).
SERIAL_STREAM = True
SERIAL_BAUD = 921600

# Close a DATA packet after this many milliseconds of sample sets (or when it fills the link's
# MTU, if sooner): 38 ms = 19 sets at 500 Hz, on serial and BLE. 0: MTU-sized packets only
# (23 sets = 46 ms at 500 Hz with 5 channels). Why 20: docs/latency.md.
BATCH_MS = 38

# Advertise and serve the BLE GATT table.
BLE = True

# Start streaming DATA at boot (serial) and on connection (BLE) without waiting for START.
STREAM_ON_BOOT = True

# Hardware watchdog: reset the board if the sampler makes no progress for this long.
WATCHDOG_MS = 5000

# IDENTIFY: blink the LED for this long.
IDENTIFY_MS = 3000
