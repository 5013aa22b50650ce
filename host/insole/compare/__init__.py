"""Compare two runs of one runner, metric by metric, with honest 95 % intervals.

``load_run(path)`` → analysis document; ``RunComparison().compute(doc_a, doc_b)`` →
``document_`` (schema ``insole.compare/1``) and ``results_``; ``sentences(doc)`` → plain words;
``insole.compare.plot.write_report`` → PNGs and one HTML page. Method: ``stats`` (circular block
bootstrap, Politis & White block length); metrics: ``metrics``. See docs/analysis.md.
"""

from insole.compare.compare import (
    SCHEMA,
    CompareConfig,
    RunComparison,
    compare_runs,
    load_run,
    sentence,
    sentences,
)

__all__ = ["SCHEMA", "CompareConfig", "RunComparison", "compare_runs", "load_run", "sentence",
           "sentences"]
