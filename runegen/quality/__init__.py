"""Measuring generated glyphs without Inception or a download: classifier.py (the rune classifier:
its Keras network and training, which import TensorFlow, and its ONNX twin, which does not),
metrics.py (FD, KID, precision/recall, density/coverage, recognisability: numpy and scipy only)
and scorer.py (a generator against held-out real glyphs, for `runegen evaluate` and training)."""
