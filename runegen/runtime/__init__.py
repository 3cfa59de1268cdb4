"""Run a trained generator without TensorFlow: `load_generator(path)` returns a `Generator`
(generator.py) whose loader the file suffix picks from the format registry: onnx.py
(onnxruntime), tflite.py (LiteRT) or keras_model.py (the only one that imports TensorFlow)."""

# The package's public names: the code is in generator.py, loading.py (what the loaders share), one module per
# runtime, and core/latents.py.
from runegen.core.latents import latents
from runegen.runtime.generator import IMAGE_SHAPE, LOADERS, SHIPPED_DIR, Generator, load_generator, shipped_generator
from runegen.runtime.loading import generator_latent_dim, in_chunks, not_a_generator

__all__ = ["IMAGE_SHAPE", "LOADERS", "SHIPPED_DIR", "Generator", "generator_latent_dim", "in_chunks", "latents", "load_generator", "not_a_generator", "shipped_generator"]
