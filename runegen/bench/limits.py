"""Each device's own limit, measured in the row's own process with the row's own threads.

A row's achieved FLOP/s means something only against what its device can do at that moment: on
the CPU, numpy's SGEMM at the row's thread count; on an accelerator, a large MatMul run by the same
onnxruntime on the same device, in float32 (TF32 on NVIDIA GPUs, onnxruntime's default there) or
float16 for the f16 files. The MatMul graphs ship as two tiny files, `matmul_f32.onnx` and
`matmul_f16.onnx` beside this module (the edge install has onnxruntime but not the onnx package);
`matmul_model` builds them and a test checks that the shipped files are what it builds.

A limit is timed for half the row's `min_seconds`, at least `runs` calls, and its best call kept:
as much care as the user asked for the row's own figures (a quick `--min-seconds 0.02` bench no
longer spends 0.3 s of every row on its yardstick).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

MATMUL_FILES = {dtype: Path(__file__).with_name(f"matmul_{dtype}.onnx") for dtype in ("f32", "f16")}


def timed(call, min_seconds: float, min_runs: int) -> list[float]:
    """Seconds per call, repeated for at least min_seconds and at least min_runs calls."""
    durations: list[float] = []
    deadline = time.perf_counter() + min_seconds
    while len(durations) < min_runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        call()
        durations.append(time.perf_counter() - start)
    return durations


def numpy_sgemm(min_seconds: float, runs: int, size: int = 1024) -> dict:
    """float32 matrix multiply through numpy's BLAS, on the threads this process was given."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    a @ b  # warm-up: thread pool start, page faults
    seconds = min(timed(lambda: a @ b, min_seconds / 2, runs))
    return {"name": "numpy SGEMM fp32", "gflops": 2 * size**3 / seconds / 1e9}


def onnx_matmul(device: str, dtype: str, min_seconds: float, runs: int, size: int = 8192) -> dict:
    """An (size x size) @ (size x size) MatMul on `device` through onnxruntime, operands and result
    bound on the device so that only the multiply is timed."""
    from runegen.core.quiet import import_onnxruntime
    from runegen.runtime.onnx import BIND_DEVICES, provider_for, provider_options, session_options

    ort = import_onnxruntime()
    provider = provider_for(device, ort)
    session = ort.InferenceSession(str(MATMUL_FILES[dtype]), sess_options=session_options(ort, 1),
                                   providers=[(provider, provider_options(provider))])
    where = BIND_DEVICES.get(provider, "cpu")
    numpy_type = np.float16 if dtype == "f16" else np.float32
    rng = np.random.default_rng(0)
    binding = session.io_binding()
    for name in ("a", "b"):
        operand = rng.standard_normal((size, size), dtype=np.float32).astype(numpy_type)
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(operand, where, 0))
    binding.bind_ortvalue_output("c", ort.OrtValue.ortvalue_from_shape_and_type([size, size], numpy_type, where, 0))
    run = lambda: session.run_with_iobinding(binding)  # noqa: E731 - synchronises at the end of each run
    run()
    seconds = min(timed(run, min_seconds / 2, runs))
    precision = "fp16" if dtype == "f16" else "fp32 (TF32 where the device uses it)"
    return {"name": f"onnxruntime MatMul {precision} on {device}", "gflops": 2 * size**3 / seconds / 1e9}


def measure(spec: dict) -> dict:
    """The limit that the row's figures are a share of."""
    if spec.get("kind") == "runtime" and spec["device"] != "cpu":
        return onnx_matmul(spec["device"], "f16" if spec.get("variant") == "f16" else "f32",
                           spec["min_seconds"], spec["runs"])
    return numpy_sgemm(spec["min_seconds"], spec["runs"], spec.get("sgemm_size", 1024))


def matmul_model(dtype: str):
    """The ONNX graph c = a @ b with square operands of any size (needs the onnx package)."""
    import onnx
    from onnx import TensorProto, helper

    element = TensorProto.FLOAT16 if dtype == "f16" else TensorProto.FLOAT
    values = [helper.make_tensor_value_info(name, element, ["n", "n"]) for name in ("a", "b", "c")]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", values[:2], values[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="runegen")
    model.ir_version = 8  # readable by every onnxruntime runegen supports (1.17 and later)
    onnx.checker.check_model(model)
    return model
