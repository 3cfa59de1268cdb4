"""The bench's speed targets, computed from one run's figures (never asserted by a test).

Each target belongs to one device and is evaluated on that device's rows only: a GPU row never
stands in for the CPU's best fp32, nor a CPU row for the GPU's.
"""

from __future__ import annotations

from runegen.core.formats import EXPORT_FORMATS

INT8 = ("int8", "int8io")


def _ok(rows, **where):
    return [r for r in rows if r["status"] == "✅" and all(r[k] == v for k, v in where.items())]


def _rate(row, batch: str, key: str = "throughput") -> float | None:
    return (row["figures"].get(key) or {}).get(batch)


def _best(rows, key):
    scored = [(key(r), r) for r in rows if key(r) is not None]
    return max(scored, key=lambda pair: pair[0]) if scored else (None, None)


def _label(row) -> str:
    return f"{row['format']} {row['variant']} ({row['runtime']}, {row['device']}, {row['threads']} thr)"


def _p50(row) -> float:
    return row["figures"]["latency_batch1"]["p50_ms"]


def _cpu_targets(report: dict, rows: list[dict], add) -> None:
    share, row = _best(_ok(rows, variant="f32"), lambda r: r["share_of_limit"].get("64"))
    add("best fp32 runtime vs SGEMM peak, batch 64", ">= 85%", share, share is not None and share >= 0.85, row)

    ratios = []
    for keras in _ok(report["rows"], format="keras", variant="eager"):
        base = _rate(keras, "1")
        ratio, row = _best(_ok(rows, threads=keras["threads"]),
                           lambda r: _rate(r, "1") / base if base and _rate(r, "1") else None)
        if ratio is not None:
            ratios.append((ratio, row))
    ratio, row = max(ratios, key=lambda pair: pair[0]) if ratios else (None, None)
    add("best runtime vs Keras eager call, batch 1", ">= 10x", ratio, ratio is not None and ratio >= 10, row)

    speedups = []
    for threads in {r["threads"] for r in rows}:
        fp32, _ = _best(_ok(rows, variant="f32", threads=threads), lambda r: _rate(r, "64"))
        int8, row = _best([r for r in _ok(rows, threads=threads) if r["variant"] in INT8],
                          lambda r: _rate(r, "64"))
        if fp32 and int8:
            speedups.append((int8 / fp32, row))
    speedup, row = max(speedups, key=lambda pair: pair[0]) if speedups else (None, None)
    add("best full-int8 vs best fp32 throughput, batch 64", ">= 2x", speedup,
        speedup is not None and speedup >= 2, row)

    p50, row = _best([r for r in _ok(rows, threads=1) if r["variant"] in INT8], lambda r: -_p50(r))
    p50 = -p50 if p50 is not None else None
    add("best int8 batch-1 p50 latency, one thread", "<= 0.5 ms", p50, p50 is not None and p50 <= 0.5, row)


def _cuda_targets(rows: list[dict], add) -> None:
    """Set for an NVIDIA H100 (issue 11): fp16 with IO binding and CUDA graphs."""
    rate, row = _best(_ok(rows, variant="f16"), lambda r: _rate(r, "1024", "resident_throughput"))
    add("cuda f16 img/s at batch 1024, data on the device", ">= 1.5 M img/s", rate,
        rate is not None and rate >= 1.5e6, row)
    rate, row = _best(_ok(rows, variant="f16"), lambda r: _rate(r, "1024"))
    add("cuda f16 img/s at batch 1024, from and to host arrays", ">= 1.5 M img/s", rate,
        rate is not None and rate >= 1.5e6, row)
    p50, row = _best(_ok(rows), lambda r: -_p50(r))
    p50 = -p50 if p50 is not None else None
    add("cuda batch-1 p50 latency, from and to host arrays", "<= 0.1 ms", p50, p50 is not None and p50 <= 0.1, row)
    p50, row = _best([r for r in _ok(rows) if r["figures"].get("resident_latency_batch1")],
                     lambda r: -r["figures"]["resident_latency_batch1"]["p50_ms"])
    p50 = -p50 if p50 is not None else None
    add("cuda batch-1 p50 latency, data on the device", "<= 0.1 ms", p50, p50 is not None and p50 <= 0.1, row)


def check(report: dict) -> list[dict]:
    """Each target of the devices in `report`: its goal, the figure measured and whether it is met."""
    exported = [r for r in report["rows"] if r["format"] in EXPORT_FORMATS]
    targets = []

    def add(name, goal, value, met, row):
        targets.append({"target": name, "goal": goal, "measured": value, "met": met,
                        "detail": row and _label(row)})

    devices = {r["device"] for r in exported}
    if "cpu" in devices:
        _cpu_targets(report, [r for r in exported if r["device"] == "cpu"], add)
    if "cuda" in devices:
        _cuda_targets([r for r in exported if r["device"] == "cuda"], add)
    return targets
