"""The bench's figures as a terminal table, Markdown, and ratios to an earlier run's JSON."""

from __future__ import annotations

import math

from runegen.core.devices import ONNX_PROVIDERS


def _number(value, fmt: str = "{:.3g}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "inf" if value == math.inf else fmt.format(value)


COMPACT = ("status", "format", "variant", "runtime", "device", "thr", "MB", "mean err", "PSNR dB",
           "recog.", "p50 ms", "on device", "RSS MB")
COMPACT_PREFIXES = ("img/s", "resident", "GFLOP/s", "% limit")


def columns(report: dict, compact: bool = False) -> list[str]:
    """Every figure for Markdown; the terminal keeps the ones that decide (COMPACT + img/s), and
    `class acc` where a row has it (a class-conditional model), as it keeps `resident` columns."""
    batches = [f"img/s b{b}" for b in report["settings"]["batches"]]
    resident = ([f"resident img/s b{b}" for b in report["settings"]["batches"]]
                if any(r["figures"].get("resident_throughput") for r in report["rows"]) else [])
    full = (["status", "format", "variant", "runtime", "device", "thr", "MB", "max err", "mean err",
             "PSNR dB", "recog.", "class acc", "load s", "first s", "p50 ms", "p90 ms", "p99 ms", "max ms"]
            + batches + resident + [f"GFLOP/s b{largest_batch(report)}", f"% limit b{largest_batch(report)}"]
            + ([f"resident % limit b{largest_batch(report)}", "resident p50 ms"] if resident else [])
            + ["limit", "on device", "RSS MB"])
    kept = COMPACT + (("class acc",) if any((r["figures"].get("quality") or {}).get("class_accuracy") is not None
                                            for r in report["rows"]) else ())
    return [c for c in full if not compact or c in kept or c.startswith(COMPACT_PREFIXES)]


def largest_batch(report: dict) -> str:
    """The batch that the GFLOP/s and % limit columns are read at: the largest measured."""
    return str(max(report["settings"]["batches"]))


def _placement(row: dict) -> str:
    """Nodes run by the row's own provider, of all nodes (ONNX rows; from onnxruntime's profiler)."""

    placement = row["figures"].get("placement")
    if not placement:
        return "-"
    own = ONNX_PROVIDERS.get(row["device"], row["device"])
    return f"{placement.get(own, 0)}/{sum(placement.values())}"


def cells(report: dict, row: dict, compact: bool = False) -> list[str]:
    figures, parity = row["figures"], row["figures"].get("parity") or {}
    latency = figures.get("latency_batch1") or {}
    throughput = figures.get("throughput") or {}
    batch = largest_batch(report)
    share = row.get("share_of_limit", {}).get(batch)
    resident = figures.get("resident_throughput") or {}
    execution = figures.get("execution")
    scores = figures.get("quality") or {}
    values = {
        "status": row["status"], "format": row["format"], "variant": row["variant"],
        "runtime": row["runtime"] + (f" ({execution})" if execution and execution != "session.run" else ""),
        "device": row["device"], "thr": str(row["threads"]),
        "MB": _number(row.get("size_mb"), "{:.2f}"), "max err": _number(parity.get("max_abs"), "{:.1e}"),
        "mean err": _number(parity.get("mean_abs"), "{:.1e}"),
        "PSNR dB": _number(parity.get("psnr"), "{:.1f}"),
        "recog.": _number(scores.get("recognisability"), "{:.3f}"),
        "class acc": _number(scores.get("class_accuracy"), "{:.3f}"),
        "load s": _number(figures.get("load_s"), "{:.2f}"),
        "first s": _number(figures.get("first_inference_s"), "{:.3f}"),
        f"GFLOP/s b{batch}": _number(row.get("gflops", {}).get(batch), "{:,.1f}"),
        f"% limit b{batch}": _number(share * 100 if share is not None else None, "{:.0f}%"),
        f"resident % limit b{batch}": _number(row.get("resident_share_of_limit", {}).get(batch, math.nan) * 100,
                                              "{:.0f}%"),
        "resident p50 ms": _number((figures.get("resident_latency_batch1") or {}).get("p50_ms"), "{:.3f}"),
        "limit": (figures.get("limit") or {}).get("name", "-"), "on device": _placement(row),
        "RSS MB": _number(figures.get("peak_rss_mb"), "{:.0f}"),
        **{f"{k} ms": _number(latency.get(f"{k}_ms"), "{:.3f}") for k in ("p50", "p90", "p99", "max")},
        **{f"img/s b{b}": _number(throughput.get(str(b)), "{:,.0f}") for b in report["settings"]["batches"]},
        **{f"resident img/s b{b}": _number(resident.get(str(b)), "{:,.0f}") for b in report["settings"]["batches"]},
    }
    return [values[c] for c in columns(report, compact)]


def summary_lines(report: dict) -> list[str]:
    env = report["environment"]
    flops = report["flops_per_image"]
    cores, machine = env["cores"], env.get("machine_cores") or env["cores"]
    usable = f"{cores} of {machine} cores usable" if cores != machine else f"{cores} core{'s' if cores != 1 else ''}"
    # Where no row ran, nothing was read nor measured: no FLOPs clause, no limit line.
    ran = any(r["figures"].get("ok") for r in report["rows"])
    flops_text = (f"{flops / 1e6:.1f} MFLOP per image (from the model's layers)" if flops else
                  "FLOPs per image unknown (in the metadata of no row that ran)" if ran else "")
    lines = [f"{env['cpu']}, {usable}, Python {env['python']}; "
             + ", ".join(v for v in env["versions"].values() if v),
             f"parity reference: {report['reference'] or 'none (no Keras or float32 file ran): parity not measured'}"
             + (f"; {flops_text}" if flops_text else "")]
    if report["limits"]:
        lines.append("each device's limit, measured in each row's process (best shown): "
                     + "; ".join(f"{name}: {g:,.1f} GFLOP/s" for name, g in report["limits"].items()))
    lines += [f"export failed: {e}" for e in report.get("export_errors", [])]
    lines += [f"note: {note}" for note in report.get("notes", [])]
    lines += [f"{r['status']} {r['format']} {r['variant']} {r['runtime']} {r['device']} {r['threads']} thr: "
              f"{_failure(r)}" for r in report["rows"] if r["status"] != "✅"]
    for target in report["targets"]:
        value = target["measured"]
        if value is None:
            lines.append(f"target {target['target']} {target['goal']}: not measured in this run")
            continue
        goal = target["goal"]
        shown = (f"{value * 100:.0f}%" if "%" in goal else f"{value:.3f} ms" if "ms" in goal
                 else f"{value:,.0f} img/s" if "img/s" in goal else f"{value:.2f}x")
        verdict = "met" if target["met"] else "MISSED"
        lines.append(f"target {target['target']} {target['goal']}: {shown} - {verdict}"
                     + (f" ({target['detail']})" if target["detail"] else ""))
    return lines


def failures(report: dict) -> str | None:
    """What failed, in a few words: rows (❌ or ❎), and variants the bench had to export first
    and could not (they have no row); None if nothing did."""
    failed = [row for row in report["rows"] if row["status"] != "✅"]
    what = [f"{len(failed)} of {len(report['rows'])} rows failed (❌ or ❎)"] if failed else []
    if report["export_errors"]:
        what.append(f"{len(report['export_errors'])} variant(s) failed to export")
    return " and ".join(what) or None


def _failure(row: dict) -> str:
    """Why a row is ❌ (its error) or ❎ (outputs not finite, or parity over its tolerance)."""
    figures = row["figures"]
    if not figures.get("ok"):
        return str(figures.get("error"))
    if not figures.get("finite"):
        return "outputs not finite (NaN or infinity)"
    return (f"parity mean error {figures['parity']['mean_abs']:.2e} over its tolerance "
            f"{row['tolerance']:.0e}")


def print_table(report: dict, console) -> None:
    """The table and its summary on `console`: commands.options.table_console, which reads no markup
    (a file named like "a[bold].onnx" was styled away, a folder "b[/red]" a MarkupError)."""
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


def _numbers(figures) -> dict:
    """The numbers of a mapping of figures; nothing of one that is not a mapping (an edited or
    foreign --compare file: a figure of text was a TypeError after the whole bench)."""
    if not isinstance(figures, dict):
        return {}
    return {key: value for key, value in figures.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def is_report(data) -> bool:
    """Whether `data` (parsed JSON) has the rows `compare` reads: an earlier bench --json."""
    rows = data.get("rows") if isinstance(data, dict) else None
    keys = ("format", "variant", "runtime", "device", "threads")
    return isinstance(rows, list) and all(
        isinstance(row, dict) and set(keys) <= row.keys() and isinstance(row.get("figures"), dict)
        and all(isinstance(row[key], (str, int)) for key in keys) for row in rows)  # a list: unhashable


def compare(report: dict, old: dict) -> list[str]:
    """Ratios new/old of throughput per batch and of batch-1 p50 latency, row by row, and a line
    naming the rows that have none: not in the earlier run, or not measured in one of the two."""
    previous = {_key(row): row for row in old.get("rows", [])}
    lines, missing, unmeasured = [], [], []
    for row in report["rows"]:
        label = f"{' '.join(map(str, _key(row)))} thr"
        before = previous.get(_key(row))
        if before is None:
            missing.append(label)
            continue
        new_rates, old_rates = _numbers(row["figures"].get("throughput")), _numbers(before["figures"].get("throughput"))
        rates = [f"b{b} {new_rates[b] / old_rates[b]:.2f}x" for b in new_rates if b in old_rates and old_rates[b]]
        ratios = [f"throughput {', '.join(rates)}"] if rates else []  # "throughput p50 latency 1.06x" without
        new_p50 = _numbers(row["figures"].get("latency_batch1")).get("p50_ms")
        old_p50 = _numbers(before["figures"].get("latency_batch1")).get("p50_ms")
        if new_p50 and old_p50:
            ratios.append(f"p50 latency {new_p50 / old_p50:.2f}x")
        if ratios:
            lines.append(f"{label}, new/old: {', '.join(ratios)}")
        else:
            unmeasured.append(label)
    if not lines and not unmeasured:
        return ["no row in common with the earlier run"]
    return (lines + ([f"not in the earlier run, no ratios: {'; '.join(missing)}"] if missing else [])
            + ([f"not measured in both runs, no ratios: {'; '.join(unmeasured)}"] if unmeasured else []))
