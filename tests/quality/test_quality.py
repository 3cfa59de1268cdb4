"""Quality: the stabilisers, class-conditional training and export, `runegen evaluate`."""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import ROOT, assert_usage_error, bar_glyph, run_cli_in_process, run_cli_without_tensorflow

CONDITIONAL = ("--conditional", "--samples-per-class", "20", "--epochs", "6", "--batch-size", "16",
               "--precision", "fp32", "--seed", "0", "--eval-every", "0")


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """A conditional generator trained briefly (480 runes, 180 steps of 16)."""
    out = tmp_path_factory.mktemp("conditional") / "run"
    result = run_cli_in_process("train", *CONDITIONAL, "--out", out)
    assert result.returncode == 0, result.stderr
    (out.parent / "train.stderr").write_text(result.stderr)
    return out


@pytest.fixture(scope="module")
def conditional_exports(conditional_run, tmp_path_factory):
    """The two files the tests read: the f32 ONNX file and the int8 TFLite file. In a folder "b[/red]",
    which rich read as markup in export's title and evaluate's status line: a MarkupError."""
    out = tmp_path_factory.mktemp("conditional_export") / "b[" / "red]"
    for fmt, variant in (("onnx", "f32"), ("tflite", "int8")):
        result = run_cli_in_process("export", conditional_run / "generator.keras", "-f", fmt, "-q", variant,
                                    "--out", out)
        assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.slow
def test_briefly_trained_conditional_generator_draws_the_class_asked_for(conditional_run, tmp_path):
    scores = tmp_path / "scores.json"
    result = run_cli_in_process("evaluate", conditional_run / "generator.keras", "--samples", "240", "--json", scores)
    assert result.returncode == 0, result.stderr
    record = json.loads(scores.read_text())
    # 180 steps are far from a good model: the loose bound is three times chance (1/24). Seen on a
    # 2-core AMD EPYC (Zen 3, AVX2 only): 0.317 after these 180 steps of 16; with steps of 32, 0.146
    # after 120 and 0.204 after 180 (and 0.21, 0.23 and 0.39 after 120, 180 and 240 on an Intel Xeon).
    assert record["class_accuracy"] >= 0.125, record
    assert "class_accuracy" in result.stdout
    # the epoch lines leave out Q's code accuracy, always 0 without latent codes
    log = (conditional_run.parent / "train.stderr").read_text()
    assert "epoch 6/6  g_loss" in log and "code_accuracy" not in log


@pytest.mark.slow
def test_generate_by_rune_and_by_class(conditional_exports, tmp_path):
    model = conditional_exports / "generator_f32.onnx"  # the classes travel in the export's metadata
    by_rune = run_cli_in_process("generate", model, "--rune", "ᚠ", "-n", "4", "--out", tmp_path / "a.png")
    assert by_rune.returncode == 0 and "4 fehu" in by_rune.stdout, by_rune.stderr
    by_class = run_cli_in_process("generate", model, "--class", "Fehu", "-n", "4", "--out", tmp_path / "b.png")
    assert by_class.returncode == 0, by_class.stderr
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert_usage_error(run_cli_in_process("generate", model, "--class", "alpha", "--out", tmp_path / "c.png"),
                       "not a class")
    assert_usage_error(run_cli_in_process("generate", model, "--rune", "ᚠ", "--class", "fehu"), "give one")
    assert_usage_error(run_cli_in_process("generate", model, "--code", "1"), "no latent codes")
    assert not (tmp_path / "c.png").exists()


def test_rune_on_an_unconditional_model_is_a_usage_error(exported, tmp_path):
    result = run_cli_in_process("generate", exported[0] / "generator_f32.onnx", "--rune", "ᚠ",
                                "--out", tmp_path / "x.png")
    assert_usage_error(result, "not class-conditional")


@pytest.mark.slow
def test_conditional_exports_carry_the_class_input(conditional_run, conditional_exports):
    from runegen.runtime import load_generator

    keras_model = load_generator(conditional_run / "generator.keras")
    labels = np.arange(48) % 24
    reference = keras_model.generate(keras_model.inputs(48, 5, labels))
    for name, tolerance in [("generator_f32.onnx", 1e-5), ("generator_int8.tflite", 0.03)]:
        exported = load_generator(conditional_exports / name)
        assert exported.num_classes == 24 and exported.latent_dim == 124
        assert exported.classes == keras_model.classes
        drawn = exported.generate(exported.inputs(48, 5, labels))
        assert np.abs(drawn - reference).mean() < tolerance, name
    scored = run_cli_in_process("evaluate", conditional_exports / "generator_int8.tflite", "--samples", "48")
    assert scored.returncode == 0 and "b[/red]/generator_int8.tflite" in scored.stdout, scored.stderr


def test_diff_augment_translates_and_cuts_out_without_flipping():
    import tensorflow as tf

    from runegen.training.augment import diff_augment

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 28, 28, 1)).astype(np.float32)
    augmented = diff_augment(tf.constant(images), tf.random.Generator.from_seed(1)).numpy()
    assert augmented.shape == images.shape
    for original, out in zip(images[..., 0], augmented[..., 0]):
        kept = out != 0  # the cutout square and the shifted-in border are 0
        matches = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                   if np.array_equal(out[kept], np.roll(original, (dy, dx), (0, 1))[kept])]
        assert len(matches) == 1, "not a translation of the original"
        assert (~kept).sum() >= 14 * 7  # at least a quarter of the 14x14 square is inside


def test_diff_augment_passes_gradients():
    import tensorflow as tf

    from runegen.training.augment import diff_augment

    images = tf.Variable(tf.random.stateless_uniform((4, 28, 28, 1), (1, 2), -1, 1))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(diff_augment(images, tf.random.Generator.from_seed(2)) ** 2)
    gradient = tape.gradient(loss, images).numpy()
    assert np.count_nonzero(gradient) > 0.5 * gradient.size


def test_evaluate_bad_input(tmp_path, trained_generator):
    assert_usage_error(run_cli_in_process("evaluate", tmp_path / "none.onnx"), "no such file")
    assert_usage_error(run_cli_in_process("evaluate", trained_generator, "--classifier", tmp_path / "c.keras"),
                       "no such file")
    assert_usage_error(run_cli_in_process("evaluate", trained_generator, "--json", tmp_path / "no" / "x.json"),
                       "cannot write")
    # a folder by the name of the JSON failed only after scoring, with a traceback
    assert_usage_error(run_cli_in_process("evaluate", trained_generator, "--json", tmp_path), "is a folder")
    # 10^8 samples asked numpy for 292 GiB, a traceback (train's --eval-samples the same)
    assert_usage_error(run_cli_in_process("evaluate", trained_generator, "--samples", "100001"), "--samples")
    assert_usage_error(run_cli_in_process("train", "--eval-samples", "100001", "--out", tmp_path / "r"),
                       "--eval-samples")
    if os.access("/dev", os.W_OK):  # (the output check writes a probe file beside it: root only)
        # a full disk as the report is written: a traceback after the scoring
        assert_usage_error(run_cli_in_process("evaluate", trained_generator, "--samples", "10", "--json", "/dev/full"),
                           "/dev/full: no space left on device")


def test_a_generator_that_draws_nan_is_refused_not_scored():
    """A diverged generator's NaN images ended `evaluate` in scipy's LinAlgError traceback."""
    from runegen.core.errors import ModelFileError
    from runegen.quality.classifier import SHIPPED_CLASSIFIER, load_classifier
    from runegen.quality.scorer import Scorer

    scorer = Scorer(load_classifier(SHIPPED_CLASSIFIER.with_suffix(".onnx")), np.zeros((20, 28, 28, 1), np.float32), samples=20)
    with pytest.raises(ModelFileError, match="non-finite values .* in 100% of its images"):
        scorer.score(lambda z: np.full((len(z), 28, 28, 1), np.nan, np.float32), 100)


def test_labelled_folder_without_tensorflow_needs_a_classifier(tmp_path, exported):
    """Scoring against labelled data of one's own trains a classifier for it (TensorFlow); on the
    edge install that is one line saying so, not a ModuleNotFoundError traceback."""
    from PIL import Image

    for kind in ("across", "down"):
        (tmp_path / "bars" / kind).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(bar_glyph(kind, i)).save(tmp_path / "bars" / kind / f"{i}.png")
    result = run_cli_without_tensorflow("evaluate", exported[0] / "generator_f32.onnx", "--data", tmp_path / "bars",
                                        "--samples", "20", cwd=tmp_path)
    assert_usage_error(result, "training one needs TensorFlow")


def test_a_classifier_that_is_no_classifier_file_is_named_so_without_tensorflow(tmp_path):
    """On the edge install, --classifier given a folder or a .png said "a .keras classifier needs
    TensorFlow", and without the flag: neither is a .keras file."""
    (tmp_path / "pic.png").write_bytes(b"not a model")
    (tmp_path / "folder").mkdir()
    for given, fragment in (("pic.png", "--classifier pic.png: not a classifier file (.onnx or .keras)"),
                            ("folder", "--classifier folder is a folder, not a classifier file (.onnx or .keras)")):
        result = run_cli_without_tensorflow("evaluate", "--samples", "10", "--classifier", given, cwd=tmp_path)
        assert_usage_error(result, fragment)
        assert "TensorFlow" not in result.stderr
    # Keras reads only a lower-case .keras: C.KERAS was "not a runegen classifier (File format not supported)"
    (tmp_path / "C.KERAS").write_bytes(b"not a model")
    assert_usage_error(run_cli_in_process("evaluate", "--samples", "10", "--classifier", tmp_path / "C.KERAS"),
                       "C.KERAS: not a classifier file (.onnx or .keras)")
    # an .onnx classifier where onnxruntime does not import (32-bit Pi OS): was a traceback
    shipped = ROOT / "runegen" / "models"
    result = run_cli_without_tensorflow("evaluate", shipped / "runes-s1" / "generator_int8.tflite", "--samples", "10",
                                        "--classifier", shipped / "classifier_runes.onnx", cwd=tmp_path,
                                        also_blocked=("onnxruntime",))
    assert_usage_error(result, "classifier_runes.onnx: an ONNX classifier needs onnxruntime")


def test_evaluate_without_tensorflow_uses_the_onnx_classifier(exported, tmp_path):
    export_dir, _ = exported
    scores = tmp_path / "s.json"
    result = run_cli_without_tensorflow("evaluate", export_dir / "generator_int8.tflite", "--samples", "200",
                                        "--json", scores, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(scores.read_text())
    assert record["format"] == "tflite" and record["n_fake"] == 200 and record["fd"] > 0


def test_evaluate_without_tensorflow_or_onnxruntime_says_what_to_install(exported, tmp_path):
    """It said to use the shipped classifier's .onnx twin, which needs the missing onnxruntime."""
    result = run_cli_without_tensorflow("evaluate", exported[0] / "generator_int8.tflite", "--samples", "10",
                                        cwd=tmp_path, also_blocked=("onnxruntime",))
    assert_usage_error(result, "its .onnx twin needs onnxruntime: pip install onnxruntime")


def test_a_classifier_stopped_while_writing_its_onnx_twin_leaves_neither_file(tmp_path, monkeypatch):
    """A stop after the .keras file was renamed into place left it without its twin, and the
    command then refused that --out as existing."""
    from PIL import Image

    from runegen.data import load_dataset
    from runegen.quality import classifier

    for kind in ("across", "down"):
        (tmp_path / "data" / kind).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(bar_glyph(kind, i)).save(tmp_path / "data" / kind / f"{i}.png")

    def stopped(*args):
        raise RuntimeError("stopped while writing the ONNX twin")

    monkeypatch.setattr(classifier, "_write_onnx", stopped)
    with pytest.raises(RuntimeError, match="stopped"):
        classifier.train_and_save(load_dataset(str(tmp_path / "data")), tmp_path / "c.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_classifier_command_writes_keras_and_a_matching_onnx_twin(tmp_path, trained_generator):
    from runegen.data import load_dataset
    from runegen.quality.classifier import classifier_outputs, load_classifier

    out = tmp_path / "tiny.keras"
    # A tiny folder dataset keeps this fast: 3 classes of bars (across, down, both), 12 places each.
    from PIL import Image
    for kind in ("across", "down", "cross"):
        (tmp_path / "data" / kind).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(bar_glyph(kind, i)).save(tmp_path / "data" / kind / f"{i}.png")
    result = run_cli_in_process("classifier", "--data", tmp_path / "data", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out} and {out.with_suffix('.onnx')}: 3 classes" in result.stdout  # both with their folder
    images = load_dataset(str(tmp_path / "data")).images
    keras_outputs = classifier_outputs(load_classifier(out), images)
    onnx_outputs = classifier_outputs(load_classifier(out.with_suffix(".onnx")), images)
    for a, b in zip(keras_outputs, onnx_outputs):
        np.testing.assert_allclose(a, b, atol=1e-4)
    # the twin keeps the names of its classes: data of as many other classes, or of these in another
    # order, was scored with its labels (class accuracy 0.121 where the right classifier gave 1.000)
    assert load_classifier(out.with_suffix(".onnx")).class_names == ["across", "cross", "down"]
    renamed = tmp_path / "renamed"
    shutil.copytree(tmp_path / "data", renamed)
    (renamed / "across").rename(renamed / "zigzag")
    assert_usage_error(run_cli_in_process("evaluate", trained_generator, "--samples", "10", "--data", renamed,
                                          "--classifier", out.with_suffix(".onnx")),
                       "the classifier learnt other classes than")
    assert_usage_error(run_cli_in_process("classifier", "--data", tmp_path / "data", "--out", out), "exists")
    assert_usage_error(run_cli_in_process("classifier", "--data", tmp_path / "data", "--out", tmp_path / "c.KERAS"),
                       "must end in .keras")  # Keras saves to nothing else: this failed after training
    assert_usage_error(run_cli_in_process("classifier", "--data", tmp_path / "data", "--out", tmp_path / ".keras"),
                       "needs a file name before the .keras suffix")  # not "must end in .keras"
    # its ONNX twin is written too, so an existing one is not overwritten either
    twin = tmp_path / "other.onnx"
    twin.write_text("mine")
    assert_usage_error(run_cli_in_process("classifier", "--data", tmp_path / "data", "--out", twin.with_suffix(".keras")),
                       "other.onnx exists")
    assert twin.read_text() == "mine"


def test_unlabelled_folder_is_scored_with_the_rune_classifiers_features(tmp_path, exported):
    """One class, no labels: no classifier can be trained on it, so the scores use the shipped rune
    classifier's features and leave out the class metrics; the classifier command refuses it."""
    from PIL import Image

    from runegen.core.errors import DataError
    from runegen.data import GlyphDataset, load_dataset
    from runegen.data.runes import render_runes
    from runegen.quality.scorer import Scorer

    glyphs, _ = render_runes(samples_per_class=10, seed=3)
    folder = tmp_path / "glyphs"
    folder.mkdir()
    for i, glyph in enumerate(glyphs):
        Image.fromarray(glyph).save(folder / f"{i:03d}.png")
    dataset = load_dataset(str(folder))
    scorer = Scorer.for_dataset(dataset, samples=120)
    assert not scorer.class_metrics and scorer.classifier.num_classes == 24
    other, _ = render_runes(samples_per_class=5, seed=4)
    real = scorer.score(lambda z: (other[:len(z), ..., None] / 127.5 - 1).astype(np.float32), 100)
    noise = scorer.score(lambda z: np.random.default_rng(0).uniform(-1, 1, (len(z), 28, 28, 1)).astype(np.float32), 100)
    assert "recognisability" not in real and "class_coverage" not in real
    assert real["fd"] < noise["fd"] / 10 and real["precision"] > 0.9 and real["recall"] > 0.9
    # Dark glyphs on a light ground, which the classifier (light on black) sees nothing in, are
    # inverted first; images it still sees nothing in are refused, not scored on features next to zero.
    inverted = tmp_path / "inverted"
    inverted.mkdir()
    for i, glyph in enumerate(glyphs):
        Image.fromarray(255 - glyph).save(inverted / f"{i:03d}.png")
    on_light = Scorer.for_dataset(load_dataset(str(inverted)), samples=120)
    real_on_light = on_light.score(lambda z: (1 - other[:len(z), ..., None] / 127.5).astype(np.float32), 100)
    assert on_light.invert and real_on_light["fd"] == pytest.approx(real["fd"], rel=1e-3)
    # the same with the shipped classifier named (--classifier): it was never inverted, and dark
    # runes on white scored any samples FD 0
    from runegen.quality.classifier import SHIPPED_CLASSIFIER
    for named in (SHIPPED_CLASSIFIER, SHIPPED_CLASSIFIER.with_suffix(".onnx")):
        assert Scorer.for_dataset(load_dataset(str(inverted)), samples=120, classifier_path=named).invert
    for i, glyph in enumerate(glyphs):
        Image.effect_noise((28, 28), 100).save(inverted / f"{i:03d}.png")
    with pytest.raises(DataError, match="sees no glyph in 100% of these images"):
        Scorer.for_dataset(load_dataset(str(inverted)), samples=120)
    # nor in black frames with a faint speck, whose features are next to zero (length 0.38) but not zero
    specks = np.full((60, 28, 28, 1), -1.0, np.float32)
    specks[:, 10:12, 10:12] = -0.5
    black = GlyphDataset("specks", specks, np.zeros(60, np.int32), ("specks",))
    with pytest.raises(DataError, match="sees no glyph in 100% of these images"):
        Scorer.for_dataset(black, samples=60)

    scores = tmp_path / "s.json"
    result = run_cli_in_process("evaluate", exported[0] / "generator_f32.onnx", "--data", folder,
                                "--samples", "300", "--json", scores)
    assert result.returncode == 0, result.stderr
    assert "one class (no labels)" in result.stderr and "│ recognisability" not in result.stdout
    # more samples than the folder's images: the real side has those only, which is said
    # the folder named as given (a path), not by its last part only
    assert f"--samples 300: {folder} holds 240 images, so the real side of each score has 240 (FD rises" in result.stderr
    # the tiny run's generator learnt the built-in runes: scored against a folder, that is said
    assert f"was trained on other data (24 classes) than {folder};" in result.stderr
    assert f"{folder} has one class (no labels)" in result.stderr
    record = json.loads(scores.read_text())
    assert record["data"] == str(folder) and record["fd"] > 0 and "recognisability" not in record and "num_classes" not in record
    assert_usage_error(run_cli_in_process("classifier", "--data", folder, "--out", tmp_path / "c.keras"),
                       "one class (no labels)")
    assert not (tmp_path / "c.keras").exists()


def test_a_folder_named_runes_is_scored_as_a_folder(tmp_path):
    """Only the built-in runes get the drawn held-out reference and the shipped 24-class classifier:
    a folder of one's own called "runes" is compared with its own images, by its own classes."""
    from PIL import Image

    from runegen.data import load_dataset
    from runegen.quality.scorer import Scorer

    for kind in ("across", "down"):
        (tmp_path / "runes" / kind).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(bar_glyph(kind, i)).save(tmp_path / "runes" / kind / f"{i}.png")
    dataset = load_dataset(str(tmp_path / "runes"))
    assert dataset.name == "runes" and not dataset.built_in
    scorer = Scorer.for_dataset(dataset, samples=20)  # trains a 2-class classifier (a few seconds)
    assert scorer.class_metrics and scorer.classifier.num_classes == 2
    assert all(any(np.array_equal(real, own) for own in dataset.images) for real in scorer.real_images)


def test_data_too_small_to_score_is_named_as_given(tmp_path):
    """`--data ../few`: the message names the path given, not only the folder's name ("few")."""
    from PIL import Image

    (tmp_path / "few").mkdir()
    (tmp_path / "here").mkdir()
    for i in range(3):
        Image.fromarray(bar_glyph("down", i)).save(tmp_path / "few" / f"{i}.png")
    assert_usage_error(run_cli_in_process("evaluate", "--data", "../few", cwd=tmp_path / "here"),
                       "--data ../few: 3 images, too few to score")
    assert_usage_error(run_cli_in_process("train", "--data", "../few", "--out", "run", cwd=tmp_path / "here"),
                       "--data ../few: 3 images, too few to score")


def test_a_conditional_generator_on_renamed_classes_names_them(tmp_path):
    """The classes differ in name only: it said "trained on other classes than data's (2 vs 2)"."""
    from PIL import Image

    from conftest import bar_glyph
    from runegen.training.nets import PRESETS

    run = tmp_path / "run"
    run.mkdir()
    PRESETS["s1"].generator(num_classes=2).save(run / "generator.keras")
    (run / "config.json").write_text(json.dumps({"preset": "s1", "latent_dim": 100, "conditional": True}))
    (run / "classes.json").write_text(json.dumps(["a", "b"]))
    for name in ("a", "c"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for n in range(2):
            Image.fromarray(bar_glyph("across", n)).save(tmp_path / "data" / name / f"{n}.png")
    assert_usage_error(run_cli_in_process("evaluate", run / "generator.keras", "--data", tmp_path / "data"),
                       "data's (a, b vs a, c)")
