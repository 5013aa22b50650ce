# Settings kept in flash across reboots: the side (SET_SIDE) and the last sample rate
# (SET_RATE). One short text file, written to a temporary name then renamed, so a power cut
# mid-write leaves the old settings, never a half-written file.
import os

_DEFAULT_RATE_HZ = 500


class Settings:
    def __init__(self, path="/settings.txt"):
        self._path = path
        self.side = 0
        self.rate_hz = _DEFAULT_RATE_HZ
        self.load()

    def load(self):
        try:
            with open(self._path) as f:
                for line in f:
                    key, _, value = line.strip().partition("=")
                    if key == "side" and value in ("0", "1"):
                        self.side = int(value)
                    elif key == "rate_hz" and value.isdigit() and 25 <= int(value) <= 1000:
                        self.rate_hz = int(value)
        except OSError:
            pass  # first boot: defaults

    def save(self):
        tmp = self._path + ".new"
        with open(tmp, "w") as f:
            f.write("side=%d\nrate_hz=%d\n" % (self.side, self.rate_hz))
        os.rename(tmp, self._path)
