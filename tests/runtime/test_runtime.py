"""The TensorFlow-free runtime (runegen.runtime): loading each format, its outputs against Keras,
its metadata, devices and threads, and what it refuses. The models come from tiny_models.py;
`runegen generate` is tested in test_generate.py.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from conftest import assert_usage_error, run_cli_in_process
from runegen.core.errors import DeviceError, ModelFileError, RunegenError
from runegen.runtime import LOADERS, latents, load_generator
from tiny_models import LATENT, METADATA, models  # noqa: F401 (models: a fixture)


# --- outputs ------------------------------------------------------------------------------------

def test_latents_are_seeded():
    a, b = latents(4, LATENT, 7), latents(4, LATENT, 7)
    assert a.dtype == np.float32 and a.shape == (4, LATENT)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, latents(4, LATENT, 8))


def test_loaders_table():
    assert set(LOADERS) == {".onnx", ".tflite", ".keras"}


@pytest.mark.parametrize("kind, fmt, tolerance", [
    ("onnx", "onnx", 1e-4), ("tflite", "tflite", 1e-4), ("keras", "keras", 1e-5), ("onnx_batch1", "onnx", 1e-4)])
def test_float_outputs_match_keras(models, kind, fmt, tolerance):
    generator = load_generator(models[kind])
    assert generator.format == fmt and generator.latent_dim == LATENT and generator.model is not None
    z, reference = models["z"], models["reference"]
    for batch in (1, 5, 1, 3):  # the batch changes both ways: the TFLite input is resized each time
        images = generator.generate(z[:batch])
        assert images.dtype == np.float32 and images.shape == (batch, 28, 28, 1)
        assert np.abs(images - reference[:batch]).max() < tolerance, (kind, batch)


def test_int8io_tflite_matches_keras(models):
    generator = load_generator(models["int8io"], threads=1)
    z, reference = models["z"], models["reference"]
    for batch in (5, 1):
        images = generator.generate(z[:batch])
        assert images.dtype == np.float32 and images.shape == (batch, 28, 28, 1)
        assert np.abs(images - reference[:batch]).mean() < 0.05
        assert images.min() >= -1.0 and images.max() <= 1.0


def test_metadata(models):
    assert load_generator(models["onnx"]).metadata == METADATA
    int8 = load_generator(models["int8io"]).metadata
    assert int8["variant"] == "int8io" and int8["classes"] == ["fehu", "uruz"] and int8["latent_dim"] == LATENT
    assert load_generator(models["tflite"]).metadata == {}  # no sidecar
    assert load_generator(models["keras"]).metadata["preset"] == "s1"  # config.json of the run


@pytest.mark.parametrize("kind", ["onnx", "tflite", "int8io"])
def test_threads(models, kind):
    every = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert load_generator(models[kind]).threads == every  # the cores it may run on (taskset, cpusets)
    generator = load_generator(models[kind], threads=1)
    assert generator.threads == 1
    assert generator.generate(models["z"][:2]).shape == (2, 28, 28, 1)
    with pytest.raises(RunegenError, match="threads"):
        load_generator(models[kind], threads=0)


def test_tflite_runtime_fallback(models, monkeypatch):
    """Without LiteRT (32-bit Pi), tflite_runtime's Interpreter is used; without either, one clear error."""
    import types

    from ai_edge_litert.interpreter import Interpreter

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import -> ImportError
    fake = types.ModuleType("tflite_runtime.interpreter")
    fake.Interpreter = Interpreter
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)
    images = load_generator(models["int8io"]).generate(models["z"][:2])
    assert np.abs(images - models["reference"][:2]).mean() < 0.05
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(DeviceError, match="need LiteRT: pip install ai-edge-litert"):
        load_generator(models["tflite"])


def test_no_latents(models):
    assert load_generator(models["onnx"]).generate(np.zeros((0, LATENT), np.float32)).shape == (0, 28, 28, 1)


# --- bad input ----------------------------------------------------------------------------------

def _truncated(models, tmp_path, kind, name):
    data = models[kind].read_bytes()
    path = tmp_path / name
    path.write_bytes(data[:len(data) // 2])
    return path


@pytest.mark.parametrize("make, fragment", [
    (lambda m, t: t / "missing.onnx", "no such file"),
    (lambda m, t: t, "is a folder, not a model file (known: .onnx"),
    (lambda m, t: _write(t / "generator_f32.onnx", m["onnx"].read_bytes()).parent,
     "generator_f32.onnx)"),  # a run or export folder: the error names the model files in it
    (lambda m, t: _write(t / "empty.onnx", b""), "is empty"),
    (lambda m, t: _write(t / "empty.tflite", b""), "is empty"),
    (lambda m, t: _write(t / "empty.keras", b""), "is empty"),
    (lambda m, t: _write(t / "garbage.onnx", b"not a model at all"), "is not a valid ONNX model (Protobuf"),
    (lambda m, t: _truncated(m, t, "onnx", "half.onnx"), "is not a valid ONNX model"),
    (lambda m, t: _write(t / "garbage.tflite", b"not a model at all"), "is not a valid TFLite model (The model"),
    (lambda m, t: _truncated(m, t, "tflite", "half.tflite"), "is not a valid TFLite model"),
    (lambda m, t: _write(t / "tflite_named.onnx", m["tflite"].read_bytes()), "is not a valid ONNX model"),
    (lambda m, t: _write(t / "garbage.keras", b"not a zip"), "is not a valid Keras model"),
    (lambda m, t: _truncated(m, t, "keras", "half.keras"), "is not a valid Keras model"),
    (lambda m, t: _write(t / "model.pb", b"x"), "unknown model format '.pb' (known: .onnx, .tflite, .keras)"),
    (lambda m, t: m["discriminator"],
     "is not a runegen generator (input (None, 28, 28, 1), output (None, 1)"),
])
def test_bad_files(models, tmp_path, make, fragment):
    path = make(models, tmp_path)
    with pytest.raises(ModelFileError) as info:
        load_generator(path)
    assert fragment in str(info.value)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_damaged_onnx_files_that_onnxruntime_opens_are_one_error(models, tmp_path, capfd):
    """Metadata that is not UTF-8 (a flipped byte) was a UnicodeDecodeError traceback from
    onnxruntime's metadata reader; a graph that opens but fails when run (a Reshape to a shape its
    input cannot take), in `generate` a traceback after onnxruntime's own coloured log line."""
    import onnx
    from onnx import TensorProto, helper

    data = models["onnx"].read_bytes()
    at = data.rfind(b"[-1, 1]")  # METADATA's output_range, stored as text
    with pytest.raises(ModelFileError, match="is not a valid ONNX model .its metadata is not UTF-8 text"):
        load_generator(_write(tmp_path / "bad_metadata.onnx", data[:at] + b"\xff" + data[at + 1:]))

    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, LATENT])
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 28, 28, 1])
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 28, 28, 1])  # 100 values a row: no
    graph = helper.make_graph([helper.make_node("Reshape", ["z", "shape"], ["image"])], "reshape", [z], [image],
                              initializer=[shape])
    path = tmp_path / "bad_reshape.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.helper.set_model_props(model, {**METADATA, "conditional": "false", "codes": "0"})  # an export's
    onnx.save(model, path)
    capfd.readouterr()
    result = run_cli_in_process("generate", path, "-n", "1", "--out", tmp_path / "g.png")
    assert_usage_error(result, "bad_reshape.onnx: the model failed to run (Fail: ")
    assert "Reshape" not in capfd.readouterr().err  # onnxruntime's own coloured log line, printed before it
    assert not (tmp_path / "g.png").exists()
    assert_usage_error(run_cli_in_process("evaluate", path, "--samples", "10"), "the model failed to run (Fail: ")


def test_a_model_whose_name_is_not_utf8_is_named_so(models, tmp_path):
    """onnxruntime and LiteRT take names as text: "not a valid ONNX model (incompatible constructor
    arguments)" for a good file."""
    for kind in ("onnx", "tflite"):
        path = _write(tmp_path / os.fsdecode(b"g\xff." + kind.encode()), models[kind].read_bytes())
        with pytest.raises(ModelFileError, match=r"g\\udcff\.\w+: a name that is not valid UTF-8"):
            load_generator(path)


def test_a_model_named_near_the_file_name_limit_has_no_sidecar_rather_than_an_error(models, tmp_path):
    """<name>.tflite.json is past the 255-byte limit where <name>.tflite is not: an OSError traceback."""
    generator = load_generator(_write(tmp_path / ("b" * 248 + ".tflite"), models["tflite"].read_bytes()))
    assert not generator.described and generator.generate(generator.inputs(1, 0)).shape == (1, 28, 28, 1)


def test_onnx_that_is_not_a_generator(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 28, 28, 1])
    same = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 28, 28, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "not_a_generator", [image], [same])
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ModelFileError, match=r"is not a runegen generator \(input \(None, 28, 28, 1\)"):
        load_generator(path)


def test_bad_sidecar(models, tmp_path):
    model = _write(tmp_path / "g.tflite", models["tflite"].read_bytes())
    _write(tmp_path / "g.tflite.json", b"{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_generator(model)
    # zeros were "not 4 non-negative numbers"; 1e308s overflow their sum (NaN shares, numpy's warnings)
    for weights in ("[0, 0, 0, 0]", "[1, -1, 1, 1]", "[1, 1]", "[1e308, 1e308, 1e308, 1e308]"):
        _write(tmp_path / "g.tflite.json", json.dumps({"codes": "4", "code_weights": weights}).encode())
        with pytest.raises(ModelFileError,
                           match="code_weights metadata is not 4 non-negative numbers with a finite sum above 0"):
            load_generator(model).inputs(2, 0)
    _write(tmp_path / "g.tflite.json", json.dumps({"conditional": "maybe"}).encode())  # was read as false
    with pytest.raises(ModelFileError, match="its conditional metadata 'maybe' is not true or false"):
        load_generator(model)
    if os.geteuid() != 0:  # (root reads any file)
        (tmp_path / "g.tflite.json").chmod(0)  # was "not valid JSON (Permission denied)"
        with pytest.raises(ModelFileError, match="g.tflite.json: cannot read"):
            load_generator(model)


def test_metadata_beside_a_link_and_beside_a_keras_file(models, tmp_path):
    """A link to a model finds the metadata beside the file it points to (a `latest.tflite` link
    drew plain Gaussian latents); a run's config.json that does not parse is refused, not ignored."""
    (tmp_path / "latest.tflite").symlink_to(models["int8io"])
    assert load_generator(tmp_path / "latest.tflite").metadata["variant"] == "int8io"
    run = tmp_path / "run"
    run.mkdir()
    _write(run / "generator.keras", models["keras"].read_bytes())
    _write(run / "config.json", b'{"preset": "s1",')
    with pytest.raises(ModelFileError, match="config.json: not valid JSON"):
        load_generator(run / "generator.keras")


def test_metadata_of_another_model_or_without_its_code_prior_is_refused(models, tmp_path):
    """Another model's sidecar or config.json beside a file (a conditional model's input is wider),
    and a run's model copied without its code_weights.json, drew wrong images with exit 0: codes
    drawn uniformly scored FD 140 where the prior's scored 15.7."""
    model = _write(tmp_path / "g.tflite", models["tflite"].read_bytes())
    _write(tmp_path / "g.tflite.json", json.dumps({**METADATA, "latent_dim": "124"}).encode())
    with pytest.raises(ModelFileError, match=r"json beside it\) describes an input of 124, but the model takes 100"):
        load_generator(model)
    run = tmp_path / "run"
    run.mkdir()
    keras_model = _write(run / "generator.keras", models["keras"].read_bytes())
    config = {"preset": "s1", "latent_dim": 76, "conditional": True}  # 76 + 24 classes = the model's 100
    _write(run / "config.json", json.dumps(config).encode())
    _write(run / "classes.json", json.dumps([f"c{k}" for k in range(24)]).encode())
    assert load_generator(keras_model).num_classes == 24
    _write(run / "config.json", json.dumps({**config, "latent_dim": 100}).encode())
    with pytest.raises(ModelFileError, match="config.json beside it\\) describes an input of 124"):
        load_generator(keras_model)
    coded = {"preset": "s1", "latent_dim": 100, "codes": 4, "code_prior": True}
    _write(run / "config.json", json.dumps(coded).encode())
    with pytest.raises(ModelFileError, match="learned code prior .* but code_weights.json is not beside it"):
        load_generator(keras_model)
    _write(run / "code_weights.json", b"[0.5, 0.5, 0, 0]")
    assert load_generator(keras_model).inputs(8, 0)[:, -4:].sum(axis=0)[2:].tolist() == [0, 0]


@pytest.mark.parametrize("kind", ["onnx", "tflite", "int8io", "keras"])
def test_wrong_latents(models, kind):
    generator = load_generator(models[kind])
    with pytest.raises(RunegenError, match="expected latent size 100, got 64"):
        generator.generate(np.zeros((2, 64), np.float32))
    with pytest.raises(RunegenError, match=r"expected latents of shape \(n, 100\)"):
        generator.generate(np.zeros(LATENT, np.float32))


def test_devices(models):
    with pytest.raises(DeviceError, match="not available to onnxruntime .*available: cpu"):
        load_generator(models["onnx"], device="no-such-accelerator")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(DeviceError, match="'cuda' is not available"):
            load_generator(models["onnx"], device="cuda")
    with pytest.raises(DeviceError, match="CPU only"):
        load_generator(models["tflite"], device="cuda")
    for name in ("CPU", "CPUExecutionProvider", " cpu"):  # as runegen names it, in what is printed
        assert load_generator(models["onnx"], device=name).device == "cpu"


def test_io_binding_path_matches_session_run(models):
    """The path an accelerator takes (buffers bound per batch size, one call = copy in, run, copy
    out) runs on onnxruntime's CPU provider too: same images as session.run, for every batch size,
    and each call's result is its own array (not a view of the reused output buffer)."""
    plain = load_generator(models["onnx"], threads=1)
    bound = load_generator(models["onnx"], threads=1, io_binding=True)
    assert (plain.execution, bound.execution) == ("session.run", "IO binding")
    assert plain.resident is None
    first, second = latents(8, LATENT, seed=1), latents(3, LATENT, seed=2)
    kept = bound.generate(first)
    for z in (second, first, latents(1, LATENT, seed=3)):
        np.testing.assert_array_equal(bound.generate(z), plain.generate(z))
    np.testing.assert_array_equal(kept, plain.generate(first))  # not overwritten by later calls
    bound.resident(8)()  # runs one bound batch without copies


def test_placement_counts_every_node_on_its_provider(models, tmp_path):
    import onnx

    from runegen.runtime.onnx import placement

    nodes = len(onnx.load(models["onnx"]).graph.node)
    profile = tmp_path / "profile" / "cpu.json"
    counts = placement(models["onnx"], "cpu", profile_to=profile)
    assert counts == {"CPUExecutionProvider": counts["CPUExecutionProvider"]}
    assert 0 < counts["CPUExecutionProvider"] <= nodes  # the optimiser may fuse nodes
    assert any(event.get("cat") == "Node" for event in json.loads(profile.read_text()))


def test_a_provider_that_cannot_load_names_what_is_missing(models, monkeypatch, tmp_path):
    """Where a provider's library is there but a system library is not (TensorRT without
    libnvinfer), the error is the loader's own line, before onnxruntime tries and prints."""
    import onnxruntime

    from runegen.runtime import onnx as onnx_runtime

    broken = tmp_path / "capi" / "libonnxruntime_providers_cuda.so"
    broken.parent.mkdir()
    broken.write_bytes(b"\x7fELF not really")
    fake = type("ort", (), {"__file__": str(tmp_path / "__init__.py")})
    # the dynamic loader's own reason ("file too short" here; "libnvinfer.so.10: cannot open ..." on a GPU box)
    assert "providers_cuda.so: file too short" in onnx_runtime.missing_library(fake, "CUDAExecutionProvider")
    assert onnx_runtime.missing_library(fake, "TensorrtExecutionProvider").startswith("this onnxruntime has no")
    assert onnx_runtime.missing_library(onnxruntime, "CPUExecutionProvider") is None
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(onnx_runtime, "missing_library", lambda ort, provider: "libcudnn.so.9: cannot open shared object file")
    with pytest.raises(DeviceError, match="cannot start CUDAExecutionProvider: libcudnn.so.9"):
        load_generator(models["onnx"], device="cuda")


def test_the_python_api_refuses_what_it_cannot_draw_or_run(models):
    """Bad labels, counts and seeds came out of numpy (IndexError, UFuncTypeError), a thread count
    of 2.5 as "not a valid ONNX model", and NaN latents as NaN images."""
    from runegen.core.latents import latents

    for labels in ([1.5, 1.0], ["a", "b"], [True, False], [None, 1], [0, 7]):
        with pytest.raises(RunegenError, match=r"expected 2 labels, whole numbers in 0\.\.5 \(class or code indices\), got"):
            latents(2, 10, 0, 6, labels)
    assert latents(0, 10, 0, 6, []).shape == (0, 10)
    for n, seed in ((-1, 0), (2.5, 0), (2, -1), (2, 1.5)):
        with pytest.raises(RunegenError, match="must be a whole number >= 0"):
            latents(n, 10, seed)
    for threads in (2.5, "2", 10**6):
        with pytest.raises(RunegenError, match=r"threads must be a whole number in 1\.\.256"):
            load_generator(models["onnx"], threads=threads)
    generator = load_generator(models["onnx"])
    with pytest.raises(RunegenError, match="expected finite real latents"):
        generator.generate(np.full((2, LATENT), np.nan, np.float32))
    with pytest.raises(RunegenError, match="expected finite real latents"):  # inf as float32: NaN images
        generator.generate(np.full((2, LATENT), 1e39, np.float64))
    # labels for a model that has no classes nor codes were dropped without a word
    with pytest.raises(RunegenError, match="takes no labels"):
        latents(2, 10, 0, 0, [5, 999])
    assert latents(2, 10, 0, 0).shape == (2, 10)
    # The image helpers take generate's own output; no images was a ZeroDivisionError
    from runegen.core.images import grid, to_uint8

    images = generator.generate(generator.inputs(3, 0))
    assert to_uint8(images).shape == (3, 28, 28) and grid(to_uint8(images)[..., None]).size == grid(to_uint8(images)).size
    assert to_uint8(np.array([[[np.nan]]])).tolist() == [[[0]]]
    for bad, fragment in ((np.zeros((0, 28, 28), np.uint8), "one or more images"), (np.zeros((28, 28)), "one or more")):
        with pytest.raises(RunegenError, match=fragment):
            grid(bad)
    with pytest.raises(RunegenError, match="columns must be a whole number >= 1"):
        grid(to_uint8(images), columns=-1)
    for options, fragment in (({"scale": 0}, "scale must be"), ({"pad": -1}, "pad must be")):
        with pytest.raises(RunegenError, match=fragment):
            grid(to_uint8(images), **options)
    with pytest.raises(RunegenError, match="rows of different lengths"):  # numpy's ValueError
        generator.generate([[0.0] * LATENT, [0.0] * (LATENT - 1)])
    with pytest.raises(RunegenError, match="device must be a name"):  # an AttributeError on .strip
        load_generator(models["onnx"], device=123)
    for blank in ("", "  "):  # ran on the CPU, where the CLI refuses an empty --device
        with pytest.raises(RunegenError, match="device must be a name .*got ' *'$"):
            load_generator(models["tflite"], device=blank)
    # generate's float images given to grid drew black tiles (to_uint8 forgotten); int16 wrapped
    for bad in (images, images.astype(np.int16)):
        with pytest.raises(RunegenError, match="expected uint8 images, got .*: to_uint8"):
            grid(bad)
