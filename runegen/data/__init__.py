"""Training data: the built-in runes (runes.py), local MNIST files (mnist.py), or any image folder
(folder.py), each loaded by `load_dataset` (dataset.py) as a `GlyphDataset`.

Every source yields 28x28 grayscale glyphs scaled to [-1, 1] to match the generator's tanh
output (seed 001, section 1-4). The runes and MNIST are white on black; an image folder keeps its
own polarity (folder.py). Only the metrics invert: dark-on-light glyphs of one class, scored on the
rune classifier's features, which learnt light on black (runegen/quality/scorer.py).
"""

# The package's public names; the code is in dataset.py and one module per source.
from runegen.core.images import IMAGE_SIZE
from runegen.data.dataset import GlyphDataset, dark_on_light, load_dataset, to_unit_range

__all__ = ["IMAGE_SIZE", "GlyphDataset", "dark_on_light", "load_dataset", "to_unit_range"]
