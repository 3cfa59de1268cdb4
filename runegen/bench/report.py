"""The bench's figures as a terminal table, Markdown, and ratios to an earlier run's JSON."""

from __future__ import annotations

import math


def _number(value, fmt: str = "{:.3g}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "inf" if value == math.inf else fmt.format(value)


COMPACT = ("status", "format", "variant", "runtime", "device", "thr", "MB", "mean err", "PSNR dB",
           "recog.", "p50 ms", "GFLOP/s b64", "% peak", "RSS MB")


def columns(report: dict, compact: bool = False) -> list[str]:
    """Every figure for Markdown; the terminal keeps the ones that decide (COMPACT + img/s)."""
    batches = [f"img/s b{b}" for b in report["settings"]["batches"]]
    full = (["status", "format", "variant", "runtime", "device", "thr", "MB", "max err", "mean err",
             "PSNR dB", "recog.", "class acc", "load s", "first s", "p50 ms", "p90 ms", "p99 ms", "max ms"] + batches
            + ["GFLOP/s b64", "% peak", "RSS MB"])
    return [c for c in full if not compact or c in COMPACT or c.startswith("img/s")]


def cells(report: dict, row: dict, compact: bool = False) -> list[str]:
    figures, parity = row["figures"], row["figures"].get("parity") or {}
    latency = figures.get("latency_batch1") or {}
    throughput = figures.get("throughput") or {}
    share = row.get("share_of_sgemm_peak", {}).get("64")
    scores = figures.get("quality") or {}
    values = {
        "status": row["status"], "format": row["format"], "variant": row["variant"],
        "runtime": row["runtime"], "device": row["device"], "thr": str(row["threads"]),
        "MB": _number(row.get("size_mb"), "{:.2f}"), "max err": _number(parity.get("max_abs"), "{:.1e}"),
        "mean err": _number(parity.get("mean_abs"), "{:.1e}"),
        "PSNR dB": _number(parity.get("psnr"), "{:.1f}"),
        "recog.": _number(scores.get("recognisability"), "{:.3f}"),
        "class acc": _number(scores.get("class_accuracy"), "{:.3f}"),
        "load s": _number(figures.get("load_s"), "{:.2f}"),
        "first s": _number(figures.get("first_inference_s"), "{:.3f}"),
        "GFLOP/s b64": _number(row.get("gflops", {}).get("64"), "{:.1f}"),
        "% peak": _number(share * 100 if share is not None else None, "{:.0f}%"),
        "RSS MB": _number(figures.get("peak_rss_mb"), "{:.0f}"),
        **{f"{k} ms": _number(latency.get(f"{k}_ms"), "{:.3f}") for k in ("p50", "p90", "p99", "max")},
        **{f"img/s b{b}": _number(throughput.get(str(b)), "{:,.0f}") for b in report["settings"]["batches"]},
    }
    return [values[c] for c in columns(report, compact)]


def summary_lines(report: dict) -> list[str]:
    env = report["environment"]
    flops = report["flops_per_image"]
    lines = [f"{env['cpu']}, {env['cores']} cores, Python {env['python']}; "
             + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
             f"parity reference: {report['reference']}; "
             f"{flops / 1e6:.1f} MFLOP per image (from the model's layers)" if flops else
             f"parity reference: {report['reference']}; FLOPs per image unknown (export without metadata)",
             "numpy SGEMM peak (measured in each row's process; best shown): "
             + ", ".join(f"{g:.1f} GFLOP/s on {t} thread(s)" for t, g in report["sgemm_gflops"].items())]
    lines += [f"export failed: {e}" for e in report.get("export_errors", [])]
    lines += [f"❌ {r['format']} {r['variant']} {r['runtime']} {r['device']} {r['threads']} thr: "
              f"{r['figures'].get('error')}" for r in report["rows"] if not r["figures"].get("ok")]
    for target in report["targets"]:
        value = target["measured"]
        if value is None:
            lines.append(f"target {target['target']} {target['goal']}: not measured in this run")
            continue
        shown = (f"{value * 100:.0f}%" if "%" in target["goal"]
                 else f"{value:.3f} ms" if "ms" in target["goal"] else f"{value:.2f}x")
        verdict = "met" if target["met"] else "MISSED"
        lines.append(f"target {target['target']} {target['goal']}: {shown} - {verdict}"
                     + (f" ({target['detail']})" if target["detail"] else ""))
    return lines


def print_table(report: dict, console) -> None:
    from rich.table import Table

    table = Table(*columns(report, compact=True), title="runegen bench")
    for row in report["rows"]:
        table.add_row(*cells(report, row, compact=True))
    console.print(table)
    for line in summary_lines(report):
        console.print(line, highlight=False, soft_wrap=True)


def markdown(report: dict) -> str:
    header = columns(report)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells(report, row)) + " |" for row in report["rows"]]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {line}" for line in summary_lines(report)) + "\n"


def _key(row: dict) -> tuple:
    return (row["format"], row["variant"], row["runtime"], row["device"], row["threads"])


def compare(report: dict, old: dict) -> list[str]:
    """Ratios new/old of throughput per batch and of batch-1 p50 latency, row by row."""
    previous = {_key(row): row for row in old.get("rows", [])}
    lines = []
    for row in report["rows"]:
        before = previous.get(_key(row))
        if before is None:
            continue
        new_rates, old_rates = row["figures"].get("throughput") or {}, before["figures"].get("throughput") or {}
        ratios = [f"b{b} {new_rates[b] / old_rates[b]:.2f}x" for b in new_rates
                  if b in old_rates and old_rates[b]]
        new_p50 = (row["figures"].get("latency_batch1") or {}).get("p50_ms")
        old_p50 = (before["figures"].get("latency_batch1") or {}).get("p50_ms")
        if new_p50 and old_p50:
            ratios.append(f"p50 latency {new_p50 / old_p50:.2f}x")
        if ratios:
            lines.append(f"{' '.join(map(str, _key(row)))} thr: throughput {', '.join(ratios)}")
    return lines or ["no row in common with the earlier run"]
