"""The deployable formats and their variants, described as data (no TensorFlow here).

Adding a format or a variant adds an entry, not if-branches: the exporter looks up the converter
named in the entry, the runtime picks its loader by file suffix, the bench iterates this table.
A variant's tolerance is the mean absolute error against the Keras generator, on the [-1, 1]
scale, above which its export fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from runegen.errors import RunegenError


@dataclass(frozen=True)
class Variant:
    format: str
    name: str
    description: str
    mean_abs_tolerance: float
    converter: str  # "module:function", imported only when exporting (it needs TensorFlow)

    def filename(self, stem: str) -> str:
        return f"{stem}_{self.name}.{self.format}"


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    runtime: str
    variants: tuple[Variant, ...]
    needs_tensorflow_to_export: bool = True
    needs_tensorflow_to_run: bool = False


def _variants(fmt: str, *rows: tuple[str, str, float, str]) -> tuple[Variant, ...]:
    return tuple(Variant(fmt, name, text, tolerance, converter) for name, text, tolerance, converter in rows)


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", ".onnx", "onnxruntime", _variants(
        "onnx",
        ("f32", "float32", 1e-4, "runegen.export.onnx:write_f32"),
        ("f16", "float16 inside, float32 input/output (for GPUs)", 5e-3, "runegen.export.onnx:write_f16"),
        ("int8", "static int8 (QDQ), calibrated on latents", 0.03, "runegen.export.onnx:write_int8"),
    )),
    "tflite": Format("tflite", ".tflite", "LiteRT", _variants(
        "tflite",
        ("f32", "float32", 1e-4, "runegen.export.tflite:write_f32"),
        ("f16", "float16 weights, float32 compute", 5e-3, "runegen.export.tflite:write_f16"),
        ("dynamic", "dynamic-range: int8 weights, float activations", 0.03,
         "runegen.export.tflite:write_dynamic"),
        ("int8", "full integer inside, float32 input/output", 0.02, "runegen.export.tflite:write_int8"),
        ("int8io", "full integer, int8 input/output", 0.03, "runegen.export.tflite:write_int8io"),
    )),
}


def select_variants(formats: list[str], variant_names: list[str] | None) -> list[Variant]:
    """The variants of these formats (all of them, or those named); the error for an unknown name
    says which names are known."""
    if "all" in formats:
        formats = list(FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise RunegenError(f"unknown format {unknown[0]!r} (known: {', '.join(FORMATS)}, all)")
    chosen = [v for f in formats for v in FORMATS[f].variants
              if not variant_names or "all" in variant_names or v.name in variant_names]
    for name in variant_names or []:
        if name != "all" and not any(v.name == name for v in chosen):
            known = sorted({v.name for f in formats for v in FORMATS[f].variants})
            raise RunegenError(f"unknown variant {name!r} for {', '.join(formats)} (known: {', '.join(known)})")
    return chosen
