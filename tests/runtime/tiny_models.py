"""A tiny untrained s1 generator as .keras, .onnx, .tflite (f32) and int8-in/out .tflite, shared by
test_runtime.py (the library) and test_generate.py (the command): two modules, so that two xdist
workers can take one each, and one build, which the second reads from disk (conftest.built_once).

The exports use the plain recipes of FACTS.md (tf2onnx.from_function; SavedModel ->
TFLiteConverter): scaffolding for the runtime's tests, not the project's exporter.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import built_once
from runegen.core.latents import latents

LATENT = 100
METADATA = {"latent_dim": "100", "output_range": "[-1, 1]", "preset": "s1",
            "classes": json.dumps(["fehu", "uruz"]), "runegen_version": "0.1.0", "variant": "f32"}
FILES = {"keras": "run/generator.keras", "discriminator": "discriminator.keras", "onnx": "generator.onnx",
         "onnx_batch1": "generator_batch1.onnx", "tflite": "generator_f32.tflite",
         "int8io": "generator_int8io.tflite"}


def _rename_onnx_tensor(model, old: str, new: str) -> None:
    for node in model.graph.node:
        for k, name in enumerate(node.output):
            if name == old:
                node.output[k] = new
        for k, name in enumerate(node.input):
            if name == old:
                node.input[k] = new
    for value in model.graph.output:
        if value.name == old:
            value.name = new


def _build(folder) -> None:
    """Every file of FILES in `folder`, with the latents `z` and the Keras generator's images of them
    (`reference`) as .npy files."""
    from runegen.core.quiet import import_tensorflow

    tf = import_tensorflow()
    import keras
    import onnx
    import tf2onnx

    from runegen.training.nets import PRESETS

    paths = {kind: folder / name for kind, name in FILES.items()}
    paths["keras"].parent.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    generator = PRESETS["s1"].generator()
    generator.save(paths["keras"])
    (folder / "run" / "config.json").write_text(json.dumps({"preset": "s1", "latent_dim": LATENT}))
    PRESETS["s1"].discriminator().save(paths["discriminator"])

    function = tf.function(lambda z: generator(z, training=False))
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=[tf.TensorSpec([None, LATENT], tf.float32, name="z")], opset=17)
    _rename_onnx_tensor(proto, proto.graph.output[0].name, "image")
    onnx.helper.set_model_props(proto, METADATA)
    onnx.save(proto, paths["onnx"])
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # a batch-1-only export
    onnx.save(proto, paths["onnx_batch1"])

    saved = folder / "saved_model"
    generator.export(str(saved), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    paths["tflite"].write_bytes(converter.convert())

    rng = np.random.default_rng(1)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.standard_normal((1, LATENT)).astype(np.float32)]
                                                for _ in range(50))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    paths["int8io"].write_bytes(converter.convert())
    sidecar = {**METADATA, "latent_dim": LATENT, "classes": ["fehu", "uruz"], "variant": "int8io"}
    (folder / "generator_int8io.tflite.json").write_text(json.dumps(sidecar))

    z = latents(5, LATENT, seed=3)
    np.save(folder / "z.npy", z)
    np.save(folder / "reference.npy", np.asarray(generator(z, training=False)))


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """{kind: path} for every kind of FILES, with `z` (5 latents) and `reference` (their images
    from the Keras generator) as arrays."""
    with built_once(tmp_path_factory, "runtime_models") as (folder, build):
        if build:
            _build(folder)
    return {**{kind: folder / name for kind, name in FILES.items()},
            "z": np.load(folder / "z.npy"), "reference": np.load(folder / "reference.npy")}
