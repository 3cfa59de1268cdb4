"""Latent codes (InfoGAN) and the spectrally normalised discriminator: training learns the codes,
the export carries the layout, every runtime draws latents that way, `generate --code` picks one."""

import csv
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from conftest import assert_usage_error, run_cli_in_process, run_cli_without_tensorflow
from runegen.runtime import Generator, load_generator
from runegen.training.config import TrainConfig

CODES = TrainConfig.codes  # the default run's


@pytest.fixture(scope="module")
def coded_run(tmp_path_factory):
    """The default recipe (its codes, hinge, spectral norm, self-conditioned D) on 480 runes for
    30 steps of 32 (Q read 19% of the codes after them on a 2-core AMD EPYC Zen 3, against the bound
    of 5%; 37% after 60 steps, which took 10 s more)."""
    out = tmp_path_factory.mktemp("codes") / "run"
    result = run_cli_in_process("train", "--samples-per-class", "20", "--batch-size", "32", "--epochs", "2",
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
    assert_usage_error(run_cli_in_process("generate", coded_onnx, "--code", code, "--out", tmp_path / "x.png"),
                       fragment)
    assert not (tmp_path / "x.png").exists()


def test_codes_must_fit_in_the_latent(tmp_path):
    assert_usage_error(run_cli_in_process("train", "--codes", "100", "--out", tmp_path / "r"),
                       "smaller than --latent-dim")


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


def test_a_run_from_before_self_conditioning_resumes_without_it(tmp_path):
    from runegen.training.config import TrainConfig, load_config, save_config

    save_config(TrainConfig(), tmp_path)
    assert load_config(tmp_path).self_conditioning  # today's default
    old = {k: v for k, v in dataclasses.asdict(TrainConfig()).items()
           if k not in ("self_conditioning", "code_balance", "mode_seeking", "mode_seeking_target",
                        "code_invariance", "code_prior", "continuous_codes", "lr_decay")}
    (tmp_path / "config.json").write_text(json.dumps(old))
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
