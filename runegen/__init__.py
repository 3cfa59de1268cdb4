"""runegen: train a small DCGAN to draw 28x28 glyphs and ship the generator to the edge.

The pipeline reads in the package layout: data -> nets -> train -> export -> runtime -> bench,
with a thin typer CLI (`runegen.cli`) on top. The training side (nets, spectral, gan, train,
export, the Keras classifier of metrics) imports TensorFlow; the edge side (runtime for .onnx and
.tflite, bench, and the generate and evaluate commands on those files) never does.
"""

__version__ = "0.1.0"
