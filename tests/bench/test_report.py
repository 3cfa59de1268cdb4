"""The bench's report (runegen/bench/report.py) on small reports made here: what failed, the
ratios to an earlier run, the summary lines and the terminal table's columns."""


def test_failures_name_failed_rows_and_variants_that_did_not_export():
    """Variants the bench had to export and could not have no row: they fail the bench too."""
    from runegen.bench.report import _failure, failures, is_report

    rows = [{"status": "✅", "figures": {"ok": True}},
            {"status": "❎", "figures": {"ok": True, "finite": True, "parity": {"mean_abs": 0.5}}, "tolerance": 0.02}]
    assert failures({"rows": rows[:1], "export_errors": []}) is None
    assert failures({"rows": rows, "export_errors": ["onnx f32: ModuleNotFoundError"]}) == \
        "1 of 2 rows failed (❌ or ❎) and 1 variant(s) failed to export"
    assert _failure(rows[1]) == "parity mean error 5.00e-01 over its tolerance 2e-02"
    assert not is_report([1, 2]) and not is_report({"rows": [{"format": "onnx"}]}) and is_report({"rows": []})


def test_compare_says_which_run_each_ratio_divides_and_what_it_could_not_compare():
    """`throughput b1 1.05x` did not say new/old or old/new, and rows of one run only (the Keras
    rows, benched with TensorFlow once) or without figures in one run were left out unsaid."""
    from runegen.bench.report import compare, is_report

    def row(fmt, variant, runtime, rate=None, p50=None):
        figures = {"throughput": {"1": rate}, "latency_batch1": {"p50_ms": p50}} if rate else {"ok": False}
        return {"format": fmt, "variant": variant, "runtime": runtime, "device": "cpu", "threads": 1, "figures": figures}

    old = {"rows": [row("onnx", "f32", "onnxruntime", 100, 1.0), row("tflite", "int8", "LiteRT", 100, 1.0)]}
    new = {"rows": [row("keras", "eager", "Keras call", 50, 2.0), row("onnx", "f32", "onnxruntime", 105, 0.95),
                    row("tflite", "int8", "LiteRT")]}
    assert compare(new, old) == [
        "onnx f32 onnxruntime cpu 1 thr, new/old: throughput b1 1.05x, p50 latency 0.95x",
        "not in the earlier run, no ratios: keras eager Keras call cpu 1 thr",
        "not measured in both runs, no ratios: tflite int8 LiteRT cpu 1 thr"]
    assert compare(new, {"rows": []}) == ["no row in common with the earlier run"]
    # An edited --compare file: figures of text or of the wrong kind were a TypeError or an
    # AttributeError after the whole bench, and a list where a name goes an unhashable key.
    edited = {"rows": [row("onnx", "f32", "onnxruntime", "fast", [1.0])]}
    assert is_report(edited) and compare(new, edited)[-1] == \
        "not measured in both runs, no ratios: onnx f32 onnxruntime cpu 1 thr"
    assert not is_report({"rows": [row(["onnx"], "f32", "onnxruntime")]})
    latency_only = {"rows": [row("onnx", "f32", "onnxruntime", "fast", 1.0)]}  # no rate to divide
    assert compare(new, latency_only)[0] == "onnx f32 onnxruntime cpu 1 thr, new/old: p50 latency 0.95x"


def failed_report(batches=(1,)):
    """A bench report whose one row failed to load: no figures, no limit, no FLOPs."""
    row = {"status": "❌", "format": "onnx", "variant": "f32", "runtime": "onnxruntime", "device": "cpu",
           "threads": 1, "path": "m.onnx", "figures": {"ok": False, "error": "ModelFileError: m.onnx is empty"}}
    return {"environment": {"cpu": "x86", "cores": 2, "machine_cores": 2, "python": "3.11", "versions": {}},
            "reference": None, "flops_per_image": None, "limits": {}, "export_errors": [], "notes": [],
            "targets": [], "settings": {"batches": list(batches)}, "rows": [row]}


def test_the_summary_leaves_out_lines_with_nothing_in_them():
    """After failed rows the footer said "each device's limit ... (best shown): " with nothing after
    it, and that FLOPs were "in the metadata of no row that ran"."""
    from runegen.bench.report import summary_lines

    report = failed_report()
    lines = summary_lines(report)
    assert not any("limit" in line or "FLOP" in line for line in lines), lines
    assert lines[1] == "parity reference: none (no Keras or float32 file ran): parity not measured"
    report["rows"][0].update(status="✅", figures={"ok": True, "limit": {"name": "numpy SGEMM fp32", "gflops": 9.0}})
    report["limits"] = {"numpy SGEMM fp32, 1 thr": 9.0}
    lines = summary_lines(report)  # a row ran, from a file without the count: said, as the limit is
    assert "FLOPs per image unknown (in the metadata of no row that ran)" in lines[1]
    assert "each device's limit, measured in each row's process (best shown): numpy SGEMM fp32, 1 thr: 9.0 GFLOP/s" in lines


def test_the_terminal_table_shows_class_accuracy_where_a_row_has_it(capsys):
    """A class-conditional model's rows are scored for class accuracy (in --json and --markdown);
    the terminal table never showed it, though README named its columns `recog.`, `class acc`."""
    from runegen.bench.report import columns, print_table
    from runegen.commands.options import table_console

    report = failed_report()
    assert "class acc" not in columns(report, compact=True) and "class acc" in columns(report)
    report["rows"][0]["figures"] = {"ok": True, "quality": {"recognisability": 0.9, "class_accuracy": 0.875}}
    assert columns(report, compact=True).index("class acc") == columns(report, compact=True).index("recog.") + 1
    print_table(report, table_console())
    shown = capsys.readouterr().out
    assert "class acc" in shown and "0.875" in shown
