# A minimal test runner for MicroPython: runs every test_* function of a module's globals and
# prints one line per test ("PASS name" / "FAIL name: error"), which the pytest side parses.
import sys


def run(g):
    names = sorted(k for k in g if k.startswith("test_"))
    for name in names:
        try:
            g[name]()
            print("PASS", name)
        except Exception as e:  # noqa: BLE001  reported to pytest, which fails the test
            print("FAIL", name + ":", type(e).__name__, e)
            sys.print_exception(e)
    print("DONE", len(names))
