"""runegen: train a small DCGAN to draw 28x28 glyphs and ship the generator to the edge.

The pipeline reads in the package layout: data -> training -> export -> runtime -> bench, with
quality/ measuring generators, core/ holding what both halves share, and a thin typer CLI
(`runegen.commands`, `runegen.cli`) on top. TensorFlow is imported, lazily, by training/ (but not
its config and distribute modules at import), export/, the Keras classifier of
quality/classifier.py and runtime/keras_model.py; the edge side (core/, runtime for .onnx and
.tflite, bench, quality/metrics.py and scorer.py with the ONNX classifier, and the generate,
bench and evaluate commands on those files) never imports it.
"""

__version__ = "0.1.0"
