"""Judging: from the entries that passed the gates to the released awards.

One module per concern, each importable without Airflow:

- :mod:`~kepu.judging.review` — the gates before scoring: formal review (automated verdicts plus a
  person's decision on every ``review`` entry) and content compliance; who enters a scoring round;
- :mod:`~kepu.judging.roster` — the judges' roster (XLSX/CSV) and conflicts of interest;
- :mod:`~kepu.judging.assign` — balanced, conflict-free, reproducible assignment with a linking set;
- :mod:`~kepu.judging.sheets` — one score sheet per judge, and reading returned sheets back;
- :mod:`~kepu.judging.ingest` — returned sheets validated with Great Expectations and recorded;
- :mod:`~kepu.judging.aggregate` — normalisation, trimmed means, agreement, judges' severity;
- :mod:`~kepu.judging.select` — awards, the ranking checksum;
- :mod:`~kepu.judging.report` — the ranking workbook and the HTML report;
- :mod:`~kepu.judging.steps` — the steps the DAGs and the command line call.

The deferrable wait for returned sheets is Airflow's side and lives with it (:mod:`kepu.orchestration.sensors`).
"""

from __future__ import annotations

from kepu.errors import JudgingError

__all__ = ["JudgingError"]
