"""Each device's limit (runegen.bench.limits): the shipped MatMul graphs and how they are timed."""

import numpy as np
import pytest

from runegen.bench.limits import MATMUL_FILES, matmul_model, measure, onnx_matmul


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_shipped_matmul_graphs_are_what_matmul_model_builds(dtype):
    assert MATMUL_FILES[dtype].read_bytes() == matmul_model(dtype).SerializeToString()


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_onnx_matmul_multiplies_and_reports_a_rate(dtype):
    """On onnxruntime's CPU provider (the same calls as on a GPU): the graph computes a @ b, and
    the limit is a positive rate with the precision in its name."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(MATMUL_FILES[dtype]), providers=["CPUExecutionProvider"])
    kind = np.float16 if dtype == "f16" else np.float32
    a, b = (np.random.default_rng(k).standard_normal((16, 16)).astype(kind) for k in (0, 1))
    [c] = session.run(None, {"a": a, "b": b})
    np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=2e-2, atol=2e-2)
    limit = onnx_matmul("cpu", dtype, min_seconds=0.01, runs=2, size=64)
    assert limit["gflops"] > 0 and ("fp16" in limit["name"]) == (dtype == "f16")


def test_cpu_rows_use_numpy_sgemm_and_accelerator_rows_the_runtime():
    cpu = measure({"kind": "runtime", "device": "cpu", "variant": "f32", "min_seconds": 0.01, "runs": 2,
                   "sgemm_size": 64})
    assert cpu["name"] == "numpy SGEMM fp32" and cpu["gflops"] > 0
    from runegen.core.errors import DeviceError

    with pytest.raises(DeviceError, match="not available"):  # no GPU here: the cuda limit is not faked
        measure({"kind": "runtime", "device": "cuda", "variant": "f16", "min_seconds": 0.01, "runs": 2})
