"""`runegen generate`, as a user runs it: the grid it writes, where, and what it refuses; the edge
formats in a new process without TensorFlow, as on a Pi. The models come from tiny_models.py."""

from __future__ import annotations

import os
import stat

import pytest
from PIL import Image

from conftest import assert_usage_error, run_cli, run_cli_in_process, run_cli_without_tensorflow
from tiny_models import models  # noqa: F401 (a fixture)

@pytest.mark.parametrize("kind", ["onnx", "int8io", "keras"])
def test_generate_writes_a_grid(models, tmp_path, kind):
    out = tmp_path / "grid.png"
    # The edge formats in a new process, as on a Pi; a .keras file here, where TensorFlow is loaded.
    run = run_cli_in_process if kind == "keras" else run_cli
    result = run("generate", models[kind], "-n", "6", "--columns", "3", "--seed", "2",
                 "--threads", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [result.stdout.strip()]
    assert f"wrote {out}: 6 images" in result.stdout and models[kind].name in result.stdout
    with Image.open(out) as image:
        assert image.mode == "L" and image.width > image.height  # 3 columns, 2 rows


def test_generate_default_out(models, tmp_path):
    result = run_cli("generate", models["tflite"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "samples.png").is_file() and "(tflite" in result.stdout
    # no sidecar: drawn all Gaussian, which is said (a model with codes drew scrambled glyphs silently)
    assert "generator_f32.tflite came without runegen's metadata (generator_f32.tflite.json beside it)" in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["{onnx}", "--out", "x.jpg"], "must end in .png"),
    (["{onnx}", "--out", "{tmp}/no/dir/x.png"], "cannot write"),
    (["{onnx}", "--out", "{tmp}"], "is a folder; give a file name"),
    (["{onnx}", "-n", "0"], "--count"),
    (["{onnx}", "--count", "1025"], "--count"),
    (["{onnx}", "--threads", "0"], "--threads"),
    (["{onnx}", "--threads", "100000"], "--threads"),  # LiteRT crashed at that many, onnxruntime took minutes
    (["{onnx}", "--out", "{tmp}/folder.png"], "is a folder"),
    (["{onnx}", "--out", "{tmp}/socket.png"], "a socket, not a file"),  # renamed over: a plain file
    (["{onnx}", "--device", "quantum"], "not available to onnxruntime"),
    (["{onnx}", "--device", ""], "--device: empty"),  # drew on the cpu
    ([""], "MODEL: '': an empty path"),  # "." is a folder
    (["{tmp}/missing.onnx"], "no such file"),
    (["{tmp}/missing.onnx", "--threads", "200"], "no such file"),  # a note on the threads came first
    (["{tmp}/" + "a" * 300 + ".onnx"], "file name too long"),  # was an OSError traceback
    (["{tmp}/garbage.tflite"], "is not a valid TFLite model"),
    (["{discriminator}"], "is not a runegen generator"),
])
def test_generate_bad_input(models, tmp_path, args, fragment):
    (tmp_path / "garbage.tflite").write_bytes(b"\x00" * 64)
    (tmp_path / "folder.png").mkdir()
    os.mknod(tmp_path / "socket.png", 0o600 | stat.S_IFSOCK)
    names = {"onnx": models["onnx"], "discriminator": models["discriminator"], "tmp": tmp_path}
    args = [a.format(**names) for a in args]
    assert_usage_error(run_cli_in_process("generate", *args, cwd=tmp_path), fragment)
    assert not (tmp_path / "samples.png").exists() and not any((tmp_path / "folder.png").iterdir())
    assert (tmp_path / "socket.png").is_socket()


# --- without TensorFlow -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["onnx", "tflite"])
def test_generate_without_tensorflow(models, tmp_path, kind):
    result = run_cli_without_tensorflow("generate", models[kind], "--out", tmp_path / "s.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.png").is_file()


def test_keras_without_tensorflow_says_so(models, tmp_path):
    result = run_cli_without_tensorflow("generate", models["keras"], cwd=tmp_path)
    assert_usage_error(result, ".keras models need TensorFlow: pip install 'runegen[train]'")
    assert not (tmp_path / "samples.png").exists()




def test_a_class_name_typed_decomposed_is_the_same_name(tmp_path):
    """`--class béta` typed as "e" and an accent (NFD, a Mac's keyboard or file name) against a
    model's NFC name was "not a class ... (known: alpha, béta, γ)"."""
    import json
    import shutil

    from conftest import ROOT

    shipped = ROOT / "runegen" / "models" / "runes-s1-conditional"
    model = shutil.copy(shipped / "generator_int8.tflite", tmp_path / "g.tflite")
    sidecar = json.loads((shipped / "generator_int8.tflite.json").read_text())
    sidecar["classes"] = json.dumps(["b\u00e9ta", *json.loads(sidecar["classes"])[1:]])
    (tmp_path / "g.tflite.json").write_text(json.dumps(sidecar))
    result = run_cli_in_process("generate", model, "--class", "Be\u0301ta", "-n", "1", "--out", tmp_path / "a.png")
    assert result.returncode == 0, result.stderr


def test_onnxruntime_start_up_warnings_are_not_printed(tmp_path):
    """Without a writable home (a systemd service's DynamicUser; here a HOME that is a file, which
    root cannot write into either), onnxruntime 1.32 printed a coloured "Failed to persist
    telemetry device ID" warning as it loaded, on every run."""
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "home").write_text("a file, where a folder would be")
    result = subprocess.run([sys.executable, "-m", "runegen", "generate", "-n", "1", "--out", tmp_path / "a.png"],
                            env={**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert "generator_f32.onnx (onnx" in result.stdout
