"""insole: host package for the open instrumented running insole.

Protocol (``insole.protocol``), sources by URL (``insole.sources``), recorder
(``insole.recorder``), analysis (``insole.analysis``) and simulator (``insole.sim``).
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
