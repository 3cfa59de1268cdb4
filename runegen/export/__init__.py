"""Export a trained Keras generator to deployable files: exporter.py (fold, rewrite, convert,
parity-gate), fold.py, subpixel.py, flops.py (FLOPs per image, for the metadata), and one
module per target format (onnx.py, tflite.py) named by the format registry
(runegen/core/formats.py)."""

from runegen.export.exporter import ExportResult, export, load_keras_generator, metadata

__all__ = ["ExportResult", "export", "load_keras_generator", "metadata"]
