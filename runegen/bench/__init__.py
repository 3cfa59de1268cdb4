"""`runegen bench`: config.py (BenchConfig), plan.py (the rows, from the format registry; workers;
the report's figures), worker.py (one row in its own process), limits.py (each device's limit), environment.py
(the machine and library versions a report records), targets.py, report.py (table,
Markdown, compare).

Nothing is imported at package import: the CLI reads config.py's defaults without loading numpy
or a runtime (as training/ does with its config.py).
"""
