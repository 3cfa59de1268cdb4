"""The format registry (runegen/core/formats.py) is what export, runtime and bench read: no TensorFlow,
no files loaded, just the tables each of them derives from it."""

from runegen.bench.plan import plan_rows
from runegen.core.formats import BY_SUFFIX, EXPORT_FORMATS, FORMATS
from runegen.runtime import LOADERS


def test_every_format_has_a_loader_and_every_variant_a_converter():
    assert set(LOADERS) == {fmt.suffix for fmt in FORMATS.values()} == set(BY_SUFFIX)
    assert set(EXPORT_FORMATS) == {"onnx", "tflite"}  # the .keras file is the source, not a target
    for fmt in EXPORT_FORMATS.values():
        assert fmt.bench_runtimes and all(callable(v.converter) and v.format == fmt.name for v in fmt.variants)
        assert len({v.name for v in fmt.variants}) == len(fmt.variants)


def test_bench_rows_come_from_the_registry(tmp_path):
    """Every exported file found gets one row per bench runtime and device it can run on: ONNX
    on every device asked for, TFLite on the CPU, once with and once without XNNPACK."""
    for fmt in EXPORT_FORMATS.values():
        for variant in fmt.variants:
            (tmp_path / variant.filename("generator")).write_bytes(b"x")
    rows = plan_rows(None, tmp_path, ["cpu", "cuda"])
    expected = sum(len(fmt.variants) * len(fmt.bench_runtimes) * (2 if fmt.devices is not None else 1)
                   for fmt in EXPORT_FORMATS.values())
    assert len(rows) == expected == 3 * 2 + 5 * 2
    assert {(r.runtime, r.device) for r in rows if r.format == "tflite"} == {("LiteRT+XNNPACK", "cpu"), ("LiteRT", "cpu")}
    assert {r.options.get("xnnpack") for r in rows if r.format == "tflite"} == {True, False}
    assert {r.device for r in rows if r.format == "onnx"} == {"cpu", "cuda"}


def test_exported_files_named_otherwise_are_benched_under_their_own_names(tmp_path):
    """A renamed export (model.onnx) was skipped, or found "nothing to benchmark"; it keeps its name
    as its variant, and the tolerance of the variant its name ends in (b_int8: int8's)."""
    from runegen.bench.sources import locate

    # not generators: the metrics' classifier a run folder caches, a killed export's temporary file
    for name in ("generator_f32.onnx", "model.onnx", "b_int8.tflite", "b_int8.tflite.json", "notes.txt",
                 "classifier.onnx", ".generator_f32-x1y2.onnx"):
        (tmp_path / name).write_bytes(b"x")
    rows = plan_rows(None, tmp_path, ["cpu"])
    assert [(r.format, r.variant, r.tolerance) for r in rows if r.runtime != "LiteRT"] == [
        ("onnx", "f32", 1e-4), ("onnx", "model", None), ("tflite", "b_int8", 0.02)]
    # one exported file given alone: that file's rows only
    assert locate(tmp_path / "b_int8.tflite") == (None, tmp_path)
    only = plan_rows(None, tmp_path, ["cpu"], only=tmp_path / "b_int8.tflite")
    assert {(r.variant, r.runtime) for r in only} == {("b_int8", "LiteRT+XNNPACK"), ("b_int8", "LiteRT")}
    # a file given alone is benched whatever its name, as generate runs it: the folder's listing
    # leaves out hidden and classifier names, and an upper-case suffix matched no glob
    (tmp_path / "G_F32.ONNX").write_bytes(b"x")
    for name, variant in ((".generator_f32-x1y2.onnx", ".generator_f32-x1y2"), ("classifier.onnx", "classifier"),
                          ("G_F32.ONNX", "G_F32")):
        assert [(r.format, r.variant) for r in plan_rows(None, tmp_path, ["cpu"], only=tmp_path / name)] == [
            ("onnx", variant)]
    # and the folder's listing takes any case of a suffix: "My Model.TFLITE" was passed over, and a
    # folder of such files alone was "no exported files"
    (tmp_path / "My Model.TFLITE").write_bytes(b"x")
    listed = [(r.format, r.variant) for r in plan_rows(None, tmp_path, ["cpu"]) if r.runtime != "LiteRT"]
    assert ("onnx", "G_F32") in listed and ("tflite", "My Model") in listed
    upper_only = tmp_path / "upper"
    upper_only.mkdir()
    (upper_only / "A.ONNX").write_bytes(b"x")
    assert locate(upper_only) == (None, upper_only)
