"""runegen: train a small DCGAN to draw 28x28 glyphs and ship the generator to the edge.

The pipeline reads in the package layout: data -> nets -> train -> export -> runtime -> bench,
with a thin typer CLI (`runegen.cli`) on top. Only `nets` and `train` import TensorFlow.
"""

__version__ = "0.1.0"
