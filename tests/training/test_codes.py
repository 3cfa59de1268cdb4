"""Latent codes (InfoGAN) and the spectrally normalised discriminator: training learns the codes,
the export carries the layout, every runtime draws latents that way, `generate --code` picks one."""

import csv
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from conftest import assert_usage_error, run_cli, run_cli_in_process, run_cli_without_tensorflow
from runegen.runtime import Generator, load_generator
from runegen.training.config import TrainConfig

CODES = TrainConfig.codes  # the default run's


@pytest.fixture(scope="module")
def coded_run(tmp_path_factory):
    """The default recipe (its codes, hinge, spectral norm, self-conditioned D) on 960 runes for
    60 steps."""
    out = tmp_path_factory.mktemp("codes") / "run"
    result = run_cli_in_process("train", "--samples-per-class", "40", "--batch-size", "32", "--epochs", "2",
                                "--eval-every", "0", "--seed", "5", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def coded_onnx(coded_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("codes_export")
    result = run_cli_in_process("export", coded_run / "generator.keras", "-f", "onnx", "-q", "f32", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "generator_f32.onnx"


def test_q_head_reads_the_codes_back_after_a_few_steps(coded_run):
    rows = list(csv.DictReader(open(coded_run / "metrics.csv")))
    # Chance is 1/CODES; the code must be visible in the image for Q to beat it.
    assert float(rows[-1]["code_accuracy"]) > 3 / CODES, rows[-1]
    assert json.loads((coded_run / "config.json").read_text())["codes"] == CODES


def columns(png):
    """Glyphs across a runegen grid (runegen.core.images.grid: 28-pixel cells, 2-pixel gaps, x3)."""
    with Image.open(png) as grid:
        return (grid.width // 3 - 2) // 30


def test_sample_grid_shows_one_code_per_column(coded_run):
    assert columns(coded_run / "samples" / "epoch_002.png") == CODES


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


def test_the_learned_code_prior_travels_with_the_generator(coded_run, coded_onnx):
    """The default run learns how often Q reads each code in real runes, saves it beside the
    generator, the export carries it, and every runtime draws codes that way."""
    saved = json.loads((coded_run / "code_weights.json").read_text())
    assert len(saved) == CODES and abs(sum(saved) - 1) < 1e-3 and min(saved) >= 0
    assert max(saved) > 1.5 / CODES  # learned: not the uniform start
    keras_generator, exported = load_generator(coded_run / "generator.keras"), load_generator(coded_onnx)
    np.testing.assert_allclose(exported.code_weights, keras_generator.code_weights, atol=1e-5)
    drawn = exported.inputs(20_000, seed=2)[:, -CODES:].argmax(axis=1)
    share = np.bincount(drawn, minlength=CODES) / len(drawn)
    np.testing.assert_allclose(share, exported.code_weights, atol=0.02)


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

    every = run_cli_in_process("generate", coded_onnx, "--code", "all", "--out", tmp_path / "all.png")
    drawn = int((generator.code_weights > 0).sum())  # codes the learned prior never draws are left out
    assert every.returncode == 0 and f"{4 * drawn} images of the {drawn} codes it draws" in every.stdout
    assert columns(tmp_path / "all.png") == drawn
    fewer = run_cli_in_process("generate", coded_onnx, "--code", "all", "-n", "2", "--out", tmp_path / "two.png")
    assert fewer.returncode == 0 and f"2 images of the first 2 of the {drawn} codes it draws" in fewer.stdout


def test_generate_every_code_leaves_out_the_codes_the_shipped_model_never_draws(tmp_path):
    from runegen.runtime import shipped_generator

    weights = load_generator(shipped_generator()).code_weights
    drawn = np.flatnonzero(weights > 0)
    assert 0 < len(drawn) < CODES  # the shipped prior gives some codes no share
    every = run_cli_in_process("generate", "--code", "all", "-n", str(len(drawn)), "--out", tmp_path / "all.png")
    assert every.returncode == 0 and columns(tmp_path / "all.png") == len(drawn), every.stderr
    never = int(np.flatnonzero(weights == 0)[0])
    one = run_cli_in_process("generate", "--code", str(never), "-n", "2", "--out", tmp_path / "never.png")
    assert one.returncode == 0 and f"never draws code {never}" in one.stderr


def test_generate_every_code_says_when_columns_give_up_one_code_per_column(tmp_path):
    """--columns is honoured; one that is no multiple of the codes drawn scatters each code over
    several columns, which a note says (silent until 2026-12-04)."""
    from runegen.runtime import shipped_generator

    drawn = int((load_generator(shipped_generator()).code_weights > 0).sum())
    odd = run_cli_in_process("generate", "--code", "all", "--columns", "7", "--out", tmp_path / "odd.png")
    assert odd.returncode == 0 and columns(tmp_path / "odd.png") == 7, odd.stderr
    note = odd.stderr.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("note: --columns 7:") and f"{drawn} codes" in note[0], note
    kept = run_cli_in_process("generate", "--code", "all", "--columns", str(2 * drawn), "--out", tmp_path / "two.png")
    assert kept.returncode == 0 and kept.stderr == "" and columns(tmp_path / "two.png") == 2 * drawn, kept.stderr


@pytest.mark.parametrize("code, fragment", [(str(CODES), f"expected a code in 0..{CODES - 1}"),
                                            ("x", "expected a code"), ("²", "expected a code")])
def test_generate_bad_code(coded_onnx, tmp_path, code, fragment):
    assert_usage_error(run_cli("generate", coded_onnx, "--code", code, "--out", tmp_path / "x.png"), fragment)
    assert not (tmp_path / "x.png").exists()


def test_codes_must_fit_in_the_latent(tmp_path):
    assert_usage_error(run_cli("train", "--codes", "100", "--out", tmp_path / "r"), "smaller than --latent-dim")


@pytest.mark.parametrize("metadata, codes", [
    ({"codes": "24"}, 24), ({}, 0), ({"codes": 60}, 60),  # a run's config.json holds a number
    ({"codes": "24", "conditional": "true", "classes": '["a", "b"]'}, 0),  # the class takes the one-hot
])
def test_codes_from_metadata(metadata, codes):
    generator = Generator("m.onnx", "onnx", 100, metadata, run=lambda z: z)
    assert generator.codes == codes
    # a conditional run's config.json keeps the default --codes 60 (unused) beside a narrower input
    narrow = Generator("m.keras", "keras", 40, {"codes": 60, "conditional": True, "classes": ["a", "b"]}, run=lambda z: z)
    assert narrow.codes == 0 and narrow.inputs(2, 0).shape == (2, 40)


@pytest.mark.parametrize("metadata, fragment", [
    ({"codes": "junk"}, "codes metadata 'junk' is not a count in 0..99"), ({"codes": "100"}, "not a count"),
    ({"codes": "-5"}, "not a count"), ({"conditional": "true", "classes": "[bad"}, "not a JSON list"),
    ({"conditional": "true", "classes": json.dumps([str(i) for i in range(200)])}, "names 200 classes"),
])
def test_metadata_the_latents_cannot_be_drawn_by_is_refused(metadata, fragment):
    """Such metadata used to be read as "no codes" or "not conditional": the model then got
    Gaussian noise where it was trained on a one-hot and drew scrambled glyphs, without a word."""
    from runegen.core.errors import ModelFileError

    with pytest.raises(ModelFileError, match=fragment):
        Generator("m.onnx", "onnx", 100, metadata, run=lambda z: z).inputs(2, 0)


def test_code_weights_draw_codes_by_the_prior_and_spread_them_for_evaluation():
    from runegen.core.latents import latents, spread

    weights = np.array([0.0, 1.0, 3.0, 0.0])
    drawn = latents(4000, 10, 3, 4, weights=weights)[:, 6:].argmax(axis=1)
    counts = np.bincount(drawn, minlength=4)
    assert counts[0] == counts[3] == 0 and 0.2 < counts[1] / 4000 < 0.3  # a quarter, up to chance
    np.testing.assert_array_equal(np.bincount(spread(40, 4, weights), minlength=4), [0, 10, 30, 0])
    np.testing.assert_array_equal(spread(6, 4), [0, 1, 2, 3, 0, 1])  # no prior: every code in turn
    uniform = latents(8, 10, 3, 4)
    assert np.array_equal(latents(8, 10, 3, 4), uniform)  # seeded, and unchanged without a prior


@pytest.mark.parametrize("weights, valid", [
    ("[1, 3]", True), ([0.5, 0.5], True), ("[1, -1]", False), ("[1]", False), ("junk", False), ("[0, 0]", False),
])
def test_code_weights_from_metadata(weights, valid):
    from runegen.core.errors import ModelFileError

    generator = Generator("m.onnx", "onnx", 100, {"codes": "2", "code_weights": weights}, run=lambda z: z)
    if valid:
        assert generator.code_weights.sum() == pytest.approx(1.0)
        assert generator.inputs(3, 0).shape == (3, 100)
    else:
        with pytest.raises(ModelFileError, match="code_weights"):
            generator.inputs(3, 0)
    assert Generator("m.onnx", "onnx", 100, {"codes": "2"}, run=lambda z: z).code_weights is None


def test_spectral_norm_bounds_the_kernel_and_passes_gradients():
    import tensorflow as tf

    import keras

    from runegen.training.spectral import SpectralConv2D, SpectralDense

    # Seeded kernels: 50 power iterations reach 1e-3 for most, not all (1 of 20 seeds tried: when
    # the two largest singular values lie close, the iteration converges slowly).
    keras.utils.set_random_seed(0)
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

    config = TrainConfig(continuous_codes=4, ema=0, lr_decay=0)
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
    # --continuous-weight scales the regression only, never the cross-entropy
    half_squared_error = 0.5 * tf.reduce_sum(tf.square(q[:, 24:] - inputs[:, 72:76]), axis=1)
    heavier = DCGAN(generator, discriminator, dataclasses.replace(config, continuous_weight=3.0), 0, 24, continuous=4)
    np.testing.assert_allclose(heavier._info_loss(q, inputs, codes), cross_entropy + 3.0 * half_squared_error,
                               rtol=1e-5)
    report = gan.train_step(tf.random.normal([8, 28, 28, 1]), tf.zeros([8], tf.int32))
    assert all(np.isfinite(float(v)) for v in report.values())


def test_mode_seeking_pairs_share_a_code_and_stop_pushing_at_the_target():
    """Latents come in pairs (2k, 2k + 1) with one code and different noise; the term is its
    weight for a pair drawn as one image, falls linearly, and is 0 from the target ratio on."""
    import tensorflow as tf

    from runegen.training.config import TrainConfig
    from runegen.training.gan import DCGAN
    from runegen.training.nets import PRESETS

    config = TrainConfig(mode_seeking=2.0, mode_seeking_target=0.2, ema=0, lr_decay=0)
    generator, discriminator = PRESETS["s1"].pair(100, 0, None, True, 24)
    gan = DCGAN(generator, discriminator, config, 0, 24)
    inputs, codes = gan.generator_inputs(8)
    np.testing.assert_array_equal(codes[0::2], codes[1::2])
    noise_distance = np.abs(inputs[0::2, :76] - inputs[1::2, :76]).mean(axis=1)
    assert (noise_distance > 0.5).all()  # the noise of a pair differs

    base = tf.zeros([4, 28, 28, 1])
    shift = tf.reshape(tf.constant(noise_distance, tf.float32), [4, 1, 1, 1])
    # pair k's images differ by `fraction` of the target everywhere
    for fraction, expected in [(0.0, 2.0), (0.5, 1.0), (1.0, 0.0), (3.0, 0.0)]:
        second = base + fraction * 0.2 * shift
        images = tf.reshape(tf.stack([base, second], axis=1), [8, 28, 28, 1])
        np.testing.assert_allclose(gan._mode_seeking_loss(inputs, images), np.full(8, expected), atol=1e-5)
    report = gan.train_step(tf.random.normal([8, 28, 28, 1]), tf.zeros([8], tf.int32))
    assert all(np.isfinite(float(v)) for v in report.values())


def test_mode_seeking_needs_an_even_batch(tmp_path):
    assert_usage_error(run_cli("train", "--mode-seeking", "1", "--batch-size", "15", "--out", tmp_path / "r"),
                       "must be even")
    assert not (tmp_path / "r").exists()


def test_self_conditioned_discriminator_judges_fakes_by_code_and_real_images_by_q():
    """With --self-conditioning D's logit gains embed(code)·phi(x): the fakes' own code, or for a
    real image (code -1) the code Q reads in it; Q's reading carries no gradient."""
    import tensorflow as tf

    from runegen.training.config import TrainConfig
    from runegen.training.gan import DCGAN
    from runegen.training.nets import PRESETS, QReading

    q = tf.constant([[0.1, 3.0, 0.2], [2.0, 0.0, 1.0]])
    np.testing.assert_array_equal(QReading(3)([tf.constant([-1, -1]), q]), [1, 0])
    np.testing.assert_array_equal(QReading(3)([tf.constant([2, -1]), q]), [2, 0])

    generator, discriminator = PRESETS["s1"].pair(100, 0, None, True, 24, self_conditioned=True)
    images = tf.random.normal([4, 28, 28, 1])
    logits, q = discriminator([images, tf.constant([-1] * 4)])
    read = np.argmax(np.asarray(q), axis=1)
    np.testing.assert_allclose(discriminator([images, tf.constant(read)])[0], logits, rtol=1e-5)
    other = (read + 1) % 24  # another code changes the logit, and only the logit
    moved, same_q = discriminator([images, tf.constant(other)])
    discriminator.get_layer("code_embedding").embeddings.assign(tf.random.normal([24, 6272]))
    assert not np.allclose(discriminator([images, tf.constant(other)])[0], moved)
    np.testing.assert_allclose(same_q, q)

    gan = DCGAN(generator, discriminator, TrainConfig(self_conditioning=True, ema=0, lr_decay=0), 0, 24)
    report = gan.train_step(tf.random.normal([8, 28, 28, 1]), tf.zeros([8], tf.int32))
    assert all(np.isfinite(float(v)) for v in report.values())


def test_balance_is_zero_for_confident_even_readings_and_grows_with_doubt_or_crowding():
    import tensorflow as tf

    from runegen.training.code_losses import balance_loss

    confident = 30.0 * np.eye(24, dtype=np.float32)
    even = balance_loss(tf.constant(confident[np.arange(48) % 24]), 24)
    crowded = balance_loss(tf.constant(confident[np.zeros(48, int)]), 24)  # all read as code 0
    unsure = balance_loss(tf.zeros([48, 24]), 24)
    assert even.shape == (48,) and float(even[0]) < 1e-5
    np.testing.assert_allclose(crowded, np.log(24), rtol=1e-4)  # every code but one left empty
    np.testing.assert_allclose(unsure, np.log(24), rtol=1e-4)  # spread, but no reading at all


def test_translate_moves_glyphs_on_a_blank_background_and_invariance_compares_readings():
    import tensorflow as tf

    from runegen.training.augment import translate
    from runegen.training.code_losses import invariance_loss

    images = -np.ones([16, 28, 28, 1], np.float32)
    images[:, 10:18, 12:14] = 1.0  # a stroke in the middle
    shifts = np.stack([np.arange(16) % 5 - 2, np.arange(16) // 4 - 2], axis=1).astype(np.int32)
    moved = np.asarray(translate(tf.constant(images), tf.constant(shifts)))
    assert moved.min() == -1.0 and moved.max() == 1.0  # blank stays blank: nothing grey comes in
    for image, (down, right) in zip(moved, shifts):
        np.testing.assert_array_equal(image, np.roll(images[0], (down, right), axis=(0, 1)))
    # dark ink on white (a folder of scans keeps its polarity): the edge a shift uncovers is white,
    # where it was filled black, two black bands the real images never have
    on_white = np.asarray(translate(tf.constant(-images), tf.constant(shifts), ground=1.0))
    np.testing.assert_array_equal(on_white, -moved)

    confident = tf.constant(30.0 * np.eye(24, dtype=np.float32)[np.arange(48) % 24])
    other = tf.constant(30.0 * np.eye(24, dtype=np.float32)[(np.arange(48) + 1) % 24])
    assert float(tf.reduce_max(invariance_loss(confident, confident, 24))) < 1e-5
    assert float(tf.reduce_min(invariance_loss(confident, other, 24))) > 20  # another code read
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(other)
        tape.watch(confident)
        loss = tf.reduce_sum(invariance_loss(other, confident, 24))
    assert tape.gradient(loss, other) is None  # the unshifted reading is the target, held fixed
    assert float(tf.reduce_max(tf.abs(tape.gradient(loss, confident)))) > 0


def test_a_run_from_before_self_conditioning_resumes_without_it(tmp_path):
    import dataclasses
    import json as json_module

    from runegen.training.config import TrainConfig, load_config, save_config

    save_config(TrainConfig(), tmp_path)
    assert load_config(tmp_path).self_conditioning  # today's default
    old = {k: v for k, v in dataclasses.asdict(TrainConfig()).items()
           if k not in ("self_conditioning", "code_balance", "mode_seeking", "mode_seeking_target",
                        "code_invariance", "code_prior", "continuous_codes", "lr_decay")}
    (tmp_path / "config.json").write_text(json_module.dumps(old))
    config = load_config(tmp_path)
    assert not config.self_conditioning and config.code_balance == 0 and config.mode_seeking == 0
    assert config.code_invariance == 0 and not config.code_prior
    assert config.continuous_codes == 0 and config.lr_decay == 0


def test_the_shipped_conditional_run_from_before_the_objective_option_reads_as_it_trained(tmp_path):
    """Its config.json (2026-11-24) predates the objective, spectral norm, beta_2 and codes keys."""
    import shutil

    from runegen.runtime.generator import SHIPPED_DIR
    from runegen.training.config import load_config

    shutil.copy(SHIPPED_DIR / "runes-s1-conditional" / "config.json", tmp_path)
    config = load_config(tmp_path)
    assert (config.objective, config.spectral_norm, config.beta_2, config.codes) == ("bce", False, 0.999, 0)
    assert config.conditional and config.lr_decay == 0 and not config.self_conditioning
