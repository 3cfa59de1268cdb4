"""Latent codes (InfoGAN) and the spectrally normalised discriminator: training learns the codes,
the export carries the layout, every runtime draws latents that way, `generate --code` picks one."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from conftest import assert_usage_error, run_cli, run_cli_without_tensorflow
from runegen.runtime import Generator, load_generator

CODES = 24


@pytest.fixture(scope="module")
def coded_run(tmp_path_factory):
    """The default recipe (24 codes, hinge, spectral norm) on 960 runes for 120 steps."""
    out = tmp_path_factory.mktemp("codes") / "run"
    result = run_cli("train", "--samples-per-class", "40", "--batch-size", "32", "--epochs", "4",
                     "--eval-every", "0", "--seed", "5", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def coded_onnx(coded_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("codes_export")
    result = run_cli("export", coded_run / "generator.keras", "-f", "onnx", "-q", "f32", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "generator_f32.onnx"


def test_q_head_reads_the_codes_back_after_a_few_steps(coded_run):
    rows = list(csv.DictReader(open(coded_run / "metrics.csv")))
    # Chance is 1/24; the code must be visible in the image for Q to beat it.
    assert float(rows[-1]["code_accuracy"]) > 3 / CODES, rows[-1]
    assert json.loads((coded_run / "config.json").read_text())["codes"] == CODES


def columns(png):
    """Glyphs across a runegen grid (runegen.core.images.grid: 28-pixel cells, 2-pixel gaps, x3)."""
    with Image.open(png) as grid:
        return (grid.width // 3 - 2) // 30


def test_sample_grid_shows_one_code_per_column(coded_run):
    assert columns(coded_run / "samples" / "epoch_004.png") == CODES


def test_generator_keeps_the_seed_network(coded_run):
    generator = load_generator(coded_run / "generator.keras")
    assert generator.latent_dim == 100 and generator.codes == CODES
    assert generator.model.count_params() == 2_330_944


def test_export_carries_the_code_layout(coded_run, coded_onnx):
    keras_generator = load_generator(coded_run / "generator.keras")
    exported = load_generator(coded_onnx)
    assert exported.metadata["codes"] == str(CODES) and exported.codes == CODES
    z = exported.inputs(50, seed=1)
    assert z.shape == (50, 100)
    np.testing.assert_array_equal(z[:, -CODES:].sum(axis=1), 1.0)  # one code each
    assert set(np.unique(z[:, -CODES:])) == {0.0, 1.0}
    np.testing.assert_allclose(exported.generate(z), keras_generator.generate(z), atol=1e-5)


def test_generate_one_code_and_every_code(coded_onnx, tmp_path):
    one = run_cli_without_tensorflow("generate", coded_onnx, "--code", "3", "-n", "4", "--seed", "9",
                                     "--out", tmp_path / "three.png", cwd=tmp_path)
    assert one.returncode == 0 and "4 images of code 3" in one.stdout, one.stderr
    generator = load_generator(coded_onnx)
    expected = generator.generate(generator.inputs(4, 9, np.full(4, 3)))
    with Image.open(tmp_path / "three.png") as png:
        drawn = np.asarray(png.convert("L"))
    from runegen.core import images
    np.testing.assert_array_equal(drawn, np.asarray(images.grid(images.to_uint8(expected))))

    every = run_cli("generate", coded_onnx, "--code", "all", "-n", "48", "--out", tmp_path / "all.png")
    assert every.returncode == 0, every.stderr
    assert columns(tmp_path / "all.png") == CODES


@pytest.mark.parametrize("code, fragment", [("24", "expected a code in 0..23"), ("x", "expected a code")])
def test_generate_bad_code(coded_onnx, tmp_path, code, fragment):
    assert_usage_error(run_cli("generate", coded_onnx, "--code", code, "--out", tmp_path / "x.png"), fragment)
    assert not (tmp_path / "x.png").exists()


def test_codes_must_fit_in_the_latent(tmp_path):
    assert_usage_error(run_cli("train", "--codes", "100", "--out", tmp_path / "r"), "smaller than --latent-dim")


@pytest.mark.parametrize("metadata, codes", [
    ({"codes": "24"}, 24), ({}, 0), ({"codes": "junk"}, 0), ({"codes": "100"}, 0),
    ({"codes": "24", "conditional": "true", "classes": '["a", "b"]'}, 0),  # the class takes the one-hot
])
def test_codes_from_metadata(metadata, codes):
    generator = Generator("m.onnx", "onnx", 100, metadata, run=lambda z: z)
    assert generator.codes == codes


def test_spectral_norm_bounds_the_kernel_and_passes_gradients():
    import tensorflow as tf

    from runegen.training.spectral import SpectralConv2D, SpectralDense

    rng = np.random.default_rng(0)
    for layer, x in [(SpectralConv2D(8, 3), rng.standard_normal((2, 6, 6, 3))),
                     (SpectralDense(5), rng.standard_normal((2, 7)))]:
        x = tf.constant(x, tf.float32)
        layer(x, training=True)
        layer.kernel.assign(layer.kernel * 40.0)
        for _ in range(50):  # power iteration converges on the largest singular value
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(x, training=True))
        kernel = np.asarray(layer.normalized_kernel(training=False))
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 1e-3, sigma
        gradient = tape.gradient(loss, layer.kernel)
        assert gradient is not None and np.abs(np.asarray(gradient)).sum() > 0


def test_continuous_codes_are_read_back_by_q():
    """Q's last outputs estimate the Gaussian columns just before the one-hot: the info loss is
    their half squared error, so a Q that reads them back exactly pays only the cross-entropy."""
    import tensorflow as tf

    from runegen.training.gan import DCGAN
    from runegen.training.nets import PRESETS
    from runegen.training.config import TrainConfig

    config = TrainConfig(continuous_codes=4, ema=0)
    generator, discriminator = PRESETS["s1"].pair(100, 0, None, True, 24, continuous=4)
    gan = DCGAN(generator, discriminator, config, 0, 24, continuous=4)
    inputs, codes = gan.generator_inputs(8)
    _, q = gan._discriminate(generator(inputs), codes)
    assert q.shape == (8, 28)
    exact = tf.concat([q[:, :24], inputs[:, 72:76]], axis=1)  # columns 72..75: before the one-hot
    import keras

    # per example: the cross-entropy alone where Q reads the continuous codes back exactly
    cross_entropy = keras.losses.sparse_categorical_crossentropy(codes, q[:, :24], from_logits=True)
    np.testing.assert_allclose(gan._info_loss(exact, inputs, codes), cross_entropy, rtol=1e-6)
    assert float(tf.reduce_mean(gan._info_loss(q, inputs, codes))) > float(tf.reduce_mean(cross_entropy))
    report = gan.train_step(tf.random.normal([8, 28, 28, 1]), tf.zeros([8], tf.int32))
    assert all(np.isfinite(float(v)) for v in report.values())
