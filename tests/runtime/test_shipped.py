"""The shipped models (runegen/models/, linked as models/): they load, generate, and score as their
model card says."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, WITHOUT_TENSORFLOW, run_cli_in_process, run_cli_without_tensorflow

MODELS = ROOT / "runegen" / "models"
GENERATORS = ["runes-s1", "runes-s1-conditional"]
FILES = ["generator.keras", "generator_f32.onnx", "generator_int8.tflite"]
SCORES = json.loads((MODELS / "scores.json").read_text())


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("file", FILES)
def test_shipped_file_loads_and_generates(name, file):
    from runegen.runtime import load_generator

    generator = load_generator(MODELS / name / file)
    assert generator.num_classes == (24 if name.endswith("conditional") else 0)
    assert len(generator.classes) == 24 and generator.metadata.get("preset") == "s1"
    images = generator.generate(generator.inputs(8, seed=0))
    assert images.shape == (8, 28, 28, 1) and np.isfinite(images).all()
    assert images.min() >= -1 - 1e-6 and images.max() <= 1 + 1e-6  # tanh, within float rounding
    assert images.std() > 0.1  # not blank


@pytest.mark.parametrize("name", GENERATORS)
def test_int8_file_matches_the_keras_generator(name):
    from runegen.runtime import load_generator

    keras_model = load_generator(MODELS / name / "generator.keras")
    int8 = load_generator(MODELS / name / "generator_int8.tflite")
    z = keras_model.inputs(64, seed=11)
    assert np.abs(int8.generate(z) - keras_model.generate(z)).mean() < 0.02


@pytest.mark.parametrize("file", FILES)
def test_evaluate_every_shipped_format_as_the_card_says(file, tmp_path):
    """`runegen evaluate` on each shipped file gives the figures recorded in scores.json."""
    out = tmp_path / "scores.json"
    result = run_cli_in_process("evaluate", MODELS / "runes-s1" / file, "--json", out)
    assert result.returncode == 0, result.stderr
    measured = json.loads(out.read_text())
    recorded = next(m for m in SCORES["models"] if m["name"] == "runes-s1")["scores"][file]
    assert measured["recognisability"] == pytest.approx(recorded["recognisability"], abs=0.02)
    assert measured["fd"] == pytest.approx(recorded["fd"], rel=0.05)
    assert measured["density"] == pytest.approx(recorded["density"], abs=0.02)
    assert measured["real_coverage"] == pytest.approx(recorded["real_coverage"], abs=0.02)
    assert "real_coverage" in result.stdout


def test_generate_without_a_model_uses_the_shipped_one_without_tensorflow(tmp_path):
    result = run_cli_without_tensorflow("generate", "-n", "4", "--out", tmp_path / "a.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "runes-s1" in result.stdout and (tmp_path / "a.png").is_file()
    by_rune = run_cli_without_tensorflow("generate", "--rune", "ᚨ", "-n", "4", "--out", tmp_path / "b.png",
                                         cwd=tmp_path)
    assert by_rune.returncode == 0, by_rune.stderr
    assert "4 ansuz" in by_rune.stdout and "runes-s1-conditional" in by_rune.stdout
    # onnxruntime that does not import (absent, as on 32-bit Pi OS, or a wheel whose native library
    # fails to load, which only the absent case fell back from): the shipped int8 TFLite file
    tflite = run_cli_without_tensorflow("generate", "-n", "4", "--out", tmp_path / "c.png", cwd=tmp_path,
                                        also_blocked=("onnxruntime",))
    assert tflite.returncode == 0, tflite.stderr
    assert "runes-s1/generator_int8.tflite" in tflite.stdout
    # installed, but its native library does not load: found by find_spec, failing at import
    broken = tmp_path / "broken" / "onnxruntime"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('libonnxruntime.so: cannot open shared object file')\n")
    env = {**os.environ, "PYTHONPATH": f"{broken.parent}{os.pathsep}{ROOT}"}
    fallback = subprocess.run([sys.executable, "-m", "runegen", "generate", "-n", "4", "--out", tmp_path / "d.png"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert fallback.returncode == 0, fallback.stderr
    assert "runes-s1/generator_int8.tflite" in fallback.stdout
    from runegen.quality.classifier import prefer_onnx  # evaluate's classifier: .keras where ONNX cannot run
    check = "from pathlib import Path; from runegen.quality.classifier import prefer_onnx; " \
            "print(prefer_onnx(Path('runegen/models/classifier_runes.keras')).suffix)"
    chosen = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert chosen.stdout.strip() == ".keras", chosen.stderr
    assert prefer_onnx(ROOT / "runegen/models/classifier_runes.keras").suffix == ".onnx"  # here, it runs


def test_the_readmes_python_example_runs_without_tensorflow(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = readme.split("**From Python**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW + example], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "eight.png") as grid:
        assert grid.width > 4 * grid.height  # eight glyphs in one row
