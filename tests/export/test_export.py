"""Export: BN folding, every format and variant round-trips with its parity threshold, checked
again with plain onnxruntime / LiteRT, and bad input."""

import json
import os
import shutil
import stat

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import assert_usage_error, run_cli_in_process
from runegen.core.errors import ModelFileError, RunegenError
from runegen.export import export, load_keras_generator
from runegen.export.fold import fold_batch_norm
from runegen.core.formats import FORMATS, Variant, lazy, select_variants
from runegen.training.nets import PRESETS


def randomise_batch_norm(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.3, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2, variance.shape)])


@pytest.mark.parametrize("preset", ["s1", "s2"])
def test_folded_generator_equals_the_original(preset):
    generator = PRESETS[preset].generator()
    randomise_batch_norm(generator)
    folded = fold_batch_norm(generator)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in folded.layers)
    latents = np.random.default_rng(1).standard_normal((32, 100)).astype(np.float32)
    original = np.asarray(generator(latents, training=False))
    assert np.abs(np.asarray(folded(latents)) - original).max() <= 1e-5


def test_variant_selection():
    assert len(select_variants(["all"], None)) == sum(len(f.variants) for f in FORMATS.values())
    assert [v.name for v in select_variants(["tflite"], ["int8", "f16"])] == ["f16", "int8"]
    assert [v.name for v in select_variants(["onnx"], ["f16"])] == ["f16"]
    # a format named twice is exported once (each twice before), in the order first named
    assert [(v.format, v.name) for v in select_variants(["onnx", "tflite", "onnx"], ["f32", "f32"])] == [
        ("onnx", "f32"), ("tflite", "f32")]
    assert len(select_variants(["tflite", "all"], None)) == len(select_variants(["all"], None))
    # names in any case, as --device is read ("unknown format 'ONNX'" before)
    assert select_variants(["ONNX", "TFLite"], ["F32", "Int8"]) == select_variants(["onnx", "tflite"], ["f32", "int8"])
    assert len(select_variants(["ALL"], ["ALL"])) == len(select_variants(["all"], None))
    with pytest.raises(RunegenError, match="unknown variant 'dynamic' for onnx"):
        select_variants(["onnx"], ["dynamic"])
    with pytest.raises(RunegenError, match="unknown format"):
        select_variants(["caffe"], None)
    with pytest.raises(RunegenError, match="unknown format 'caffe'"):  # beside `all` it went unsaid
        select_variants(["all", "caffe"], None)


def test_every_variant_is_written_and_within_its_threshold(exported):
    out, stdout = exported
    for fmt in FORMATS.values():
        for variant in fmt.variants:
            path = out / variant.filename("generator")
            assert path.stat().st_size > 0, path
            assert variant.name in stdout
    assert "FAIL" not in stdout
    assert not list(out.glob(".*"))  # no temporary files left
    from PIL import Image
    for fmt in (f for f in FORMATS.values() if f.variants):  # a picture per format: Keras + a row per variant
        with Image.open(out / f"generator_parity_{fmt.name}.png") as side_by_side:
            assert side_by_side.height > side_by_side.width / 12 * len(fmt.variants)
            assert side_by_side.height < side_by_side.width / 12 * (len(fmt.variants) + 2)


def plain_outputs(path, latents):
    """The exported file run by plain onnxruntime / LiteRT, as an outside checker would."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["image"], {"z": latents})[0]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], latents.shape)
    interpreter.allocate_tensors()
    feed = latents
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        feed = np.clip(np.round(latents / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], feed)
    interpreter.invoke()
    result = interpreter.get_tensor(outp["index"])
    if outp["dtype"] == np.int8:
        scale, zero = outp["quantization"]
        result = (result.astype(np.float32) - zero) * scale
    return result


def test_plain_runtimes_agree_with_keras(exported, trained_generator):
    out, _ = exported
    model = keras.saving.load_model(trained_generator, safe_mode=True)
    latents = np.random.default_rng(7).standard_normal((9, 100)).astype(np.float32)
    reference = np.asarray(model(latents, training=False))
    for fmt in FORMATS.values():
        for variant in fmt.variants:
            error = np.abs(plain_outputs(out / variant.filename("generator"), latents) - reference)
            limit = 1e-4 if variant.name == "f32" else 0.03
            assert error.mean() <= limit, (variant, error.mean())


def test_metadata_in_onnx_and_tflite_sidecars(exported):
    import onnx
    import onnxruntime as ort

    out, _ = exported
    model = onnx.load(out / "generator_f32.onnx")
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 17
    session = ort.InferenceSession(str(out / "generator_f32.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"] and session.get_inputs()[0].shape[0] != 1
    assert [o.name for o in session.get_outputs()] == ["image"]
    for name in ("generator_f32.onnx", "generator_f16.onnx", "generator_int8.onnx"):  # one batch, named
        session = ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape[0] == session.get_outputs()[0].shape[0] == "batch", name
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["latent_dim"] == "100" and meta["preset"] == "s1" and meta["output_range"] == "[-1, 1]"
    assert json.loads(meta["classes"])[0] == "fehu"
    sidecar = json.loads((out / "generator_int8.tflite.json").read_text())
    assert sidecar["variant"] == "int8" and sidecar["latent_dim"] == "100"


def test_onnx_f16_is_float16_inside_with_float32_io(exported):
    """What GPUs run on their fp16 units, fed and read as the f32 file is (Casts at both ends)."""
    import onnx

    out, _ = exported
    half, full = onnx.load(out / "generator_f16.onnx"), onnx.load(out / "generator_f32.onnx")
    for value in [*half.graph.input, *half.graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    weights = [t for t in half.graph.initializer if len(t.dims) >= 2]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert (out / "generator_f16.onnx").stat().st_size < 0.6 * (out / "generator_f32.onnx").stat().st_size
    assert {p.key: p.value for p in half.metadata_props}["variant"] == "f16"
    assert len(full.graph.node) < len(half.graph.node)
    # valid ONNX, nodes in order: the converter appended the input's Cast after the MatMul reading it
    # (onnxruntime ran it anyway; onnx's checker and reference runtime refused it)
    for name in ("generator_f16.onnx", "generator_f32.onnx", "generator_int8.onnx"):
        onnx.checker.check_model(onnx.load(out / name), full_check=True)


def test_a_variant_that_fails_parity_leaves_no_file(trained_generator, tmp_path):
    impossible = Variant("onnx", "f32", "float32", -1.0, lazy("runegen.export.onnx", "write_f32"))
    [result] = export(load_keras_generator(trained_generator), [impossible], tmp_path)
    assert not result.ok and "mean abs error" in result.error
    assert [p.name for p in tmp_path.iterdir()] == ["generator_parity_onnx.png"]
    with Image.open(tmp_path / "generator_parity_onnx.png") as picture:
        assert picture.height < picture.width / 10  # the Keras row only: the failed file is not shown
    # A TFLite file whose sidecar cannot be written fails without its model reaching the folder
    # (the model was renamed into place first, and left there without its metadata); a second
    # export into the folder, of another format, keeps the first one's picture.
    tflite_f32 = next(v for v in FORMATS["tflite"].variants if v.name == "f32")
    (tmp_path / "generator_f32.tflite.json").mkdir()
    [result] = export(load_keras_generator(trained_generator), [tflite_f32], tmp_path)
    assert not result.ok and "Is a directory" in result.error
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "generator_f32.tflite.json", "generator_parity_onnx.png", "generator_parity_tflite.png"]


def test_a_format_is_prepared_once_for_its_variants(trained_generator, tmp_path, monkeypatch):
    """tf2onnx ran once per ONNX variant, and each TFLite variant wrote its own SavedModel: now
    each format prepares once for all its variants, each of which writes its own metadata. Where
    the preparation fails, each of that format's variants fails with its error, and the other
    format's files are still written."""
    import dataclasses

    import onnx

    prepared = []
    prepare_onnx = FORMATS["onnx"].prepare

    def counted(*args):
        prepared.append(args)
        return prepare_onnx(*args)

    def broken(*args):
        raise RuntimeError("no SavedModel today")

    monkeypatch.setitem(FORMATS, "onnx", dataclasses.replace(FORMATS["onnx"], prepare=counted))
    monkeypatch.setitem(FORMATS, "tflite", dataclasses.replace(FORMATS["tflite"], prepare=broken))
    variants = [v for fmt in ("onnx", "tflite") for v in FORMATS[fmt].variants if v.name in ("f32", "f16")]
    results = export(load_keras_generator(trained_generator), variants, tmp_path)
    assert len(prepared) == 1
    assert [(r.variant.format, r.variant.name, r.error) for r in results] == [
        ("onnx", "f32", None), ("onnx", "f16", None),
        ("tflite", "f32", "RuntimeError: no SavedModel today"), ("tflite", "f16", "RuntimeError: no SavedModel today")]
    for name in ("f32", "f16"):
        assert {p.key: p.value for p in onnx.load(tmp_path / f"generator_{name}.onnx").metadata_props}["variant"] == name
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "generator_f16.onnx", "generator_f32.onnx", "generator_parity_onnx.png", "generator_parity_tflite.png"]


def test_bad_export_input(trained_generator, tmp_path):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip")
    discriminator = tmp_path / "discriminator.keras"
    PRESETS["s1"].discriminator().save(discriminator)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    in_the_way = tmp_path / "in_the_way"
    for name in ("generator_f32.onnx", "generator_f32.tflite.json"):
        (in_the_way / name).mkdir(parents=True)
    picture_in_the_way = tmp_path / "picture_in_the_way"
    (picture_in_the_way / "generator_parity_onnx.png").mkdir(parents=True)
    dangling = tmp_path / "dangling"  # its file a link into a folder that is gone
    dangling.mkdir()
    (dangling / "generator_f32.onnx").symlink_to(tmp_path / "gone" / "generator_f32.onnx")
    socket_in_the_way = tmp_path / "socket_in_the_way"
    socket_in_the_way.mkdir()
    os.mknod(socket_in_the_way / "generator_f32.onnx", 0o600 | stat.S_IFSOCK)  # a server's socket file
    cases = [
        ((tmp_path / "missing.keras", "--format", "onnx"), "no such file"),
        ((garbage, "--format", "onnx"), "not a valid"),
        ((discriminator, "--format", "onnx"), "not a runegen generator"),
        ((trained_generator, "--format", "caffe"), "unknown format"),
        ((trained_generator, "--format", ","), "no format given"),
        ((trained_generator, "--format", "onnx", "--quantize", "dynamic"), "unknown variant"),
        ((trained_generator, "--format", "onnx", "--quantize", ""), "--quantize: empty"),  # wrote every variant
        ((trained_generator, "--format", "onnx", "--out", blocker / "sub"), "not writable"),
        ((trained_generator, "--format", "onnx", "--out", blocker), f"--out {blocker}: is a file; give a folder"),
        # a folder named like a model file was made, and the files written into it
        ((trained_generator, "--format", "onnx", "--out", tmp_path / "g.onnx"), "a folder of files, not a file"),
        # a folder where a file goes: exported, checked, then a failed rename, exit 1, after the work
        ((trained_generator, "-f", "onnx", "-q", "f32", "--out", in_the_way), "generator_f32.onnx in it is a folder"),
        ((trained_generator, "-f", "tflite", "-q", "f32", "--out", in_the_way), "generator_f32.tflite.json in it is a folder"),
        # the side-by-side picture's name: found when it was written, after the files (exit 2, late)
        ((trained_generator, "-f", "onnx", "-q", "f32", "--out", picture_in_the_way),
         "generator_parity_onnx.png in it is a folder"),
        # converted and checked, then the variant failed (exit 1) for want of the link's folder
        ((trained_generator, "-f", "onnx", "-q", "f32", "--out", dangling),
         f"cannot write (no folder {tmp_path / 'gone'})"),
        ((trained_generator, "-f", "onnx", "-q", "f32", "--out", socket_in_the_way),
         "a socket, not a file"),  # renamed over
    ]
    default_out_is_a_file = tmp_path / "r" / "generator.keras"  # without --out, which it was named by
    default_out_is_a_file.parent.mkdir()
    shutil.copy(trained_generator, default_out_is_a_file)
    (default_out_is_a_file.parent / "export").write_text("x")
    cases.append(((default_out_is_a_file, "-f", "onnx"), f"export folder {tmp_path / 'r' / 'export'}: is a file"))
    for args, fragment in cases:
        assert_usage_error(run_cli_in_process("export", *args), fragment)
    assert not (blocker.parent / "sub").exists() and blocker.read_text() == "x"
    assert not (tmp_path / "g.onnx").exists()
    assert (socket_in_the_way / "generator_f32.onnx").is_socket() and not (tmp_path / "gone").exists()


def test_an_export_over_earlier_files_says_which_it_replaced(trained_generator, exported, tmp_path):
    """Exporting into a folder that holds exports replaced them without a word."""
    shutil.copy(exported[0] / "generator_f32.onnx", tmp_path)
    shutil.copy(exported[0] / "generator_int8.onnx", tmp_path)  # left there, from these weights
    result = run_cli_in_process("export", trained_generator, "--format", "onnx", "--quantize", "f32,f16",
                                "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: replaced the earlier generator_f32.onnx in" in result.stderr and "f16.onnx" not in result.stderr
    assert "other weights" not in result.stderr


def test_an_export_beside_files_of_other_weights_says_so(trained_generator, tmp_path):
    """Two models exported into one folder mixed their files without a word, and bench then rated
    the other model's files against the new one (a few int8 rows passed)."""
    untrained = tmp_path / "untrained" / "generator.keras"  # same name and shapes, other weights
    untrained.parent.mkdir()
    PRESETS["s1"].generator().save(untrained)
    tflite_f32 = next(v for v in FORMATS["tflite"].variants if v.name == "f32")
    [result] = export(load_keras_generator(untrained), [tflite_f32], tmp_path / "out")
    assert result.ok, result.error
    for name in ("generator_f32.tflite", "generator_f32.tflite.json"):  # bench reads any name
        shutil.copy(tmp_path / "out" / name, tmp_path / "out" / name.replace("generator", "renamed"))
    result = run_cli_in_process("export", trained_generator, "-f", "onnx", "-q", "f32", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    [note] = [line for line in result.stderr.splitlines() if "other weights" in line]
    assert note.startswith("note: ") and "generator_f32.tflite" in note and "generator_f32.onnx" not in note
    assert "renamed_f32.tflite" in note


def test_what_an_export_cannot_know_or_write(trained_generator, exported, tmp_path):
    """A .keras file alone (no run's config.json) exported as described, "conditional": "false" and
    "codes": "0", so generate stopped warning about it; a model whose rename fails left its new
    sidecar describing the earlier model (or none); a parity picture that cannot be written was a
    traceback after the files were written."""
    from runegen.runtime import load_generator

    alone = tmp_path / "alone" / "g.keras"
    alone.parent.mkdir()
    shutil.copy(trained_generator, alone)
    # Its target a link to an earlier model's file, whose sidecar lies beside it: the new sidecar
    # was written beside the link, and the earlier one went on describing the new file.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "g_f32.tflite").write_bytes(b"an earlier model")
    (elsewhere / "g_f32.tflite.json").write_text(json.dumps({"conditional": "false", "codes": "4"}))
    (tmp_path / "alone_out").mkdir()
    (tmp_path / "alone_out" / "g_f32.tflite").symlink_to(elsewhere / "g_f32.tflite")
    result = run_cli_in_process("export", alone, "-f", "tflite", "-q", "f32", "--out", tmp_path / "alone_out")
    assert result.returncode == 0, result.stderr
    exported_alone = load_generator(tmp_path / "alone_out" / "g_f32.tflite")
    assert not exported_alone.described and "codes" not in exported_alone.metadata
    assert not (tmp_path / "alone_out" / "g_f32.tflite.json").exists()
    assert "codes" not in json.loads((elsewhere / "g_f32.tflite.json").read_text())
    # its note says what is wrong with the sidecar there ("came without" one, it said)
    assert FORMATS["tflite"].undescribed(exported_alone.path).endswith(
        "g_f32.tflite has metadata (g_f32.tflite.json beside it) that does not say how its latent is drawn "
        "(exported from a .keras file without its run's config.json): its latent is drawn all Gaussian, so a model "
        "trained with latent codes or classes draws wrong images")

    # A rename that fails (a folder in the way; the command refuses that before any work, so the
    # library is called as the command would after its checks)
    tflite_f32 = next(v for v in FORMATS["tflite"].variants if v.name == "f32")
    blocked = tmp_path / "blocked"
    (blocked / "generator_f32.tflite").mkdir(parents=True)  # the model's rename onto it fails
    [result] = export(load_keras_generator(trained_generator), [tflite_f32], blocked)
    assert not result.ok and "Is a directory" in result.error
    assert not (blocked / "generator_f32.tflite.json").exists()  # no sidecar without its model
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    shutil.copy(exported[0] / "generator_f32.tflite.json", earlier)
    (earlier / "generator_f32.tflite.json").write_text('{"codes": "earlier"}')
    (earlier / "generator_f32.tflite").mkdir()
    export(load_keras_generator(trained_generator), [tflite_f32], earlier)
    assert (earlier / "generator_f32.tflite.json").read_text() == '{"codes": "earlier"}'  # put back

    pictured = tmp_path / "pictured"
    (pictured / "generator_parity_onnx.png").mkdir(parents=True)
    # the command refuses this --out before any work (test_bad_export_input); the library finds it
    # when it writes the picture, after the files, and says which it wrote
    onnx_f32 = next(v for v in FORMATS["onnx"].variants if v.name == "f32")
    with pytest.raises(ModelFileError, match="cannot write the parity picture .*the files written: generator_f32.onnx"):
        export(load_keras_generator(trained_generator), [onnx_f32], pictured)
    assert (pictured / "generator_f32.onnx").is_file()
