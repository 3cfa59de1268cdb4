"""ONNX export: tf2onnx on a traced inference function, once per export (`prepare`), then each
variant from that float32 graph: as it is, in float16, or onnxruntime's static int8 (QDQ).

tf2onnx.convert.from_keras is broken on Keras 3 (onnx/tensorflow-onnx#2329); converting a
tf.function that calls the model with training=False works and matches Keras to ~1e-7.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17
INPUT_NAME, OUTPUT_NAME, BATCH = "z", "image", "batch"


def prepare(model, latent_dim: int, scratch: Path):
    """The float32 ONNX model, converted once for every variant: dynamic batch, input `z`, output
    `image`, no metadata yet (each variant writes its own)."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec([None, latent_dim], tf.float32, name=INPUT_NAME)]
    function = tf.function(lambda z: model(z, training=False))
    proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
    rename_outputs(proto.graph, [OUTPUT_NAME])
    name_batch_dimension(proto.graph)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def described(proto, metadata: dict[str, str]):
    """A copy of the prepared model with this variant's metadata (the variants share the prepared one)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    onnx.helper.set_model_props(copy, metadata)
    return copy


def rename_outputs(graph, names) -> None:
    """Give the graph's outputs these names, in order (tf2onnx names them after TF tensors)."""
    renames = {output.name: name for output, name in zip(graph.output, names)}
    for node in graph.node:  # an output may also feed other nodes (the classifier's features do)
        node.output[:] = [renames.get(output, output) for output in node.output]
        node.input[:] = [renames.get(name, name) for name in node.input]
    for output in graph.output:
        output.name = renames.get(output.name, output.name)


def name_batch_dimension(graph, name: str = BATCH) -> None:
    """One name for the batch dimension of the input and the output (tf2onnx gives each its own,
    `unk__47` and `unk__48`), so that tools reading the file see that a batch of n latents makes n
    images (shape inference, TensorRT optimisation profiles)."""
    ends = [*graph.input, *graph.output]
    symbols = {value.type.tensor_type.shape.dim[0].dim_param for value in ends} - {""}
    for value in [*ends, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in symbols:
                dim.dim_param = name


def write_f32(proto, target: Path, calibration: np.ndarray, metadata: dict[str, str]) -> None:
    import onnx

    onnx.save(described(proto, metadata), target)


def write_f16(proto, target: Path, calibration: np.ndarray, metadata: dict[str, str]) -> None:
    """Weights and arithmetic in float16, the input and output kept float32 (a Cast at each end),
    so callers feed and read the same arrays as the f32 file: GPUs run it on their fp16 units."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = convert_float_to_float16(described(proto, metadata), keep_io_types=True)
    in_order(proto.graph)  # the converter appends the input's Cast after the nodes that read it
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, target)


def in_order(graph) -> None:
    """Sort the graph's nodes so that each comes after the nodes whose outputs it reads, as ONNX
    requires (onnxruntime sorts for itself and ran the f16 file; onnx's checker and reference
    runtime refused it): pass by pass, each pass taking the nodes whose inputs are all made."""
    ready = {name.name for name in graph.input} | {init.name for init in graph.initializer} | {""}
    waiting, ordered = list(graph.node), []
    while waiting:
        runnable = [node for node in waiting if all(name in ready for name in node.input)]
        if not runnable:
            raise ValueError(f"ONNX graph has a cycle or an input no node makes: {waiting[0].name}")
        for node in runnable:
            ready.update(node.output)
        ordered += runnable
        taken = {id(node) for node in runnable}
        waiting = [node for node in waiting if id(node) not in taken]
    del graph.node[:]
    graph.node.extend(ordered)


def write_int8(proto, target: Path, calibration: np.ndarray, metadata: dict[str, str]) -> None:
    """Static int8 in QDQ format (the QOperator format has no ConvTranspose), calibrated on
    latent draws: the generator's real inputs, not images."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Latents(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // 32)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    with tempfile.TemporaryDirectory() as scratch:
        float_path, preprocessed = Path(scratch) / "f32.onnx", Path(scratch) / "preprocessed.onnx"
        onnx.save(proto, float_path)
        quant_pre_process(str(float_path), str(preprocessed))
        quantize_static(str(preprocessed), str(target), Latents(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
    quantized = onnx.load(target)
    onnx.helper.set_model_props(quantized, metadata)
    onnx.save(quantized, target)
