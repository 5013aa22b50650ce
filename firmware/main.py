# Runs at boot after boot.py. Press BOOT (GPIO0) within a second after reset to skip the firmware
# and keep the REPL (needed for `make deploy` while the serial stream is on).
import board

if not board.safe_mode():
    import app

    app.run(board)
