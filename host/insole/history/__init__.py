"""Run history: each runner's load per foot zone across weeks, with the rules runners follow.

- :mod:`.store` the database (SQLite file or PostgreSQL URL, one code path)
- :mod:`.ingest` inputs → runs → records (parallel analysis: process pool or Dask)
- :mod:`.weeks` ISO weeks, zone load, change, ACWR, the rules (``insole.history/1``)
- :mod:`.plot` PNG pictures and one self-contained HTML page
"""

from insole.history.store import AddResult, FootTotals, HistoryStore, RunRecord
from insole.history.weeks import SCHEMA, WeeklyRules, weekly_history

__all__ = ["AddResult", "FootTotals", "HistoryStore", "RunRecord", "SCHEMA", "WeeklyRules",
           "weekly_history"]
