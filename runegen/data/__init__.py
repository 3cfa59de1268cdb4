"""Training data: the built-in runes (runes.py), local MNIST files (mnist.py), or any image folder
(folder.py), each loaded by `load_dataset` (dataset.py) as a `GlyphDataset`.

Every source yields 28x28 grayscale glyphs, white on black, scaled to [-1, 1] to match the
generator's tanh output (seed 001, section 1-4).
"""

# The package's public names; the code is in dataset.py and one module per source.
from runegen.core.images import IMAGE_SIZE
from runegen.data.dataset import GlyphDataset, load_dataset, to_unit_range

__all__ = ["IMAGE_SIZE", "GlyphDataset", "load_dataset", "to_unit_range"]
