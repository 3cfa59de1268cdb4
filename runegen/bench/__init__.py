"""`runegen bench`: plan.py (the rows, from the format registry; workers; the report's
figures), worker.py (one row in its own process), limits.py (each device's limit), targets.py,
report.py (table, Markdown, compare)."""

from runegen.bench.plan import BenchConfig, Row, available_devices, bench, environment, plan_rows, resolve_devices

__all__ = ["BenchConfig", "Row", "available_devices", "bench", "environment", "plan_rows", "resolve_devices"]
