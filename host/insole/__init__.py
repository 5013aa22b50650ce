"""insole: host package for the open instrumented running insole.

One subpackage per stage of the data flow (docs/architecture.md): ``protocol`` (packets,
framing), ``io`` (sources by URL, sessions, the recorder), ``model`` (sensor, calibration,
hardware facts), ``analysis`` (stream, forces, steps, metrics, flags, document), ``sim``,
``validation`` (score, datasets), ``figures`` (the run report), ``live`` (the live window),
``history`` (runs across weeks), and ``cli`` (one thin module per command).
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
