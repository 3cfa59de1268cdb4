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
    expected = sum(len(fmt.variants) * len(fmt.bench_runtimes) * (2 if fmt.any_device else 1)
                   for fmt in EXPORT_FORMATS.values())
    assert len(rows) == expected == 3 * 2 + 5 * 2
    assert {(r.runtime, r.device) for r in rows if r.format == "tflite"} == {("LiteRT+XNNPACK", "cpu"), ("LiteRT", "cpu")}
    assert {r.options.get("xnnpack") for r in rows if r.format == "tflite"} == {True, False}
    assert {r.device for r in rows if r.format == "onnx"} == {"cpu", "cuda"}
