"""Score a generator with the offline metrics of runegen/metrics.py, against held-out real glyphs.

One `Scorer` holds what a score needs besides the generator: the classifier whose features the
metrics use, and the real reference images. The same Scorer serves `runegen evaluate` (any
exported format, through the runtime) and training's evaluation every `--eval-every` epochs.

- Classifier: the shipped one for the built-in runes (runegen/models/classifier_runes.onnx, run
  by onnxruntime: no TensorFlow needed; or its .keras original), a file given with --classifier,
  or one trained on the spot (about 10 s for the runes). Every classifier runegen saves is written
  twice, .keras and .onnx, the ONNX one checked against Keras.
- Reference: for the runes, freshly drawn glyphs with a seed no default run trains on; for
  other data, a fixed random subset of the dataset.
- Generated samples come from fixed latents (seed `EVAL_SEED`); a conditional generator is asked
  for every class in turn, and `class_accuracy` is the share the classifier labels as asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from runegen.data import GlyphDataset
from runegen.errors import DeviceError, ModelFileError, RunegenError, reason

MODELS_DIR = Path(__file__).parent / "models"
SHIPPED_CLASSIFIERS = {"runes": MODELS_DIR / "classifier_runes.keras"}  # and its .onnx beside it
ONNX_TOLERANCE = 1e-4  # max abs difference of the ONNX classifier's outputs from Keras'
OUTPUTS = ("features", "probabilities")
REFERENCE_SEED = 90_001  # drawing seed of the held-out real runes
EVAL_SEED = 7  # the generated samples' latents
CHUNK = 256


@dataclass
class Scorer:
    classifier: object  # metrics.KerasClassifier or OnnxClassifier
    real_images: np.ndarray
    samples: int = 1000

    def __post_init__(self):
        from runegen.metrics import classifier_outputs

        # The reference's features, once: training scores twice per evaluation (EMA and live).
        self.real_features, _ = classifier_outputs(self.classifier, self.real_images)

    @classmethod
    def for_dataset(cls, dataset: GlyphDataset, samples: int = 1000, classifier_path: Path | None = None,
                    cache: Path | None = None, log: Callable[[str], None] = lambda line: None) -> "Scorer":
        """The classifier: `classifier_path`, else the shipped one for the data, else one cached
        in `cache` (a run folder), else one trained now (and saved to `cache` if given)."""
        if classifier_path is not None and not classifier_path.exists():
            raise ModelFileError(f"{classifier_path}: no such file")
        path = classifier_path or SHIPPED_CLASSIFIERS.get(dataset.name)
        if path is None or not path.exists():
            path = cache / "classifier.keras" if cache is not None else None
        if path is not None and path.exists():
            classifier = load_classifier(prefer_onnx(path))
        else:
            from runegen.metrics import KerasClassifier

            log(f"training a classifier on {dataset.name} for the metrics ...")
            classifier = KerasClassifier(train_and_save(dataset, path))
        if classifier.num_classes != len(dataset.class_names):
            raise RunegenError(f"the classifier knows {classifier.num_classes} classes, "
                             f"the data {dataset.name} has {len(dataset.class_names)}")
        return cls(classifier, reference_images(dataset, samples), samples)

    def score(self, generate: Callable[[np.ndarray], np.ndarray], width: int, num_classes: int = 0,
              codes: int = 0) -> dict:
        """Every metric of `generate` (model inputs of `width` -> images in [-1, 1])."""
        from runegen import metrics

        fakes, labels = draw(generate, width, num_classes, self.samples, codes)
        fake_features, fake_probabilities = metrics.classifier_outputs(self.classifier, fakes)
        return metrics.scores(self.real_features, fake_features, fake_probabilities, labels)


def draw(generate: Callable[[np.ndarray], np.ndarray], width: int, num_classes: int, samples: int,
         codes: int = 0):
    """(images (samples, 28, 28, 1), labels or None): `generate` on the fixed inputs of EVAL_SEED,
    a conditional generator asked for every class in turn (the labels), a generator with latent
    codes for every code in turn (codes are no classes: no labels)."""
    from runegen.runtime import latents

    one_hot = num_classes or codes
    labels = np.arange(samples) % one_hot if one_hot else None
    z = latents(samples, width, EVAL_SEED, one_hot, labels)
    fakes = np.concatenate([generate(z[i:i + CHUNK]) for i in range(0, len(z), CHUNK)])
    return fakes.reshape(-1, 28, 28, 1), labels if num_classes else None


class OnnxClassifier:
    """The classifier exported to ONNX (outputs `features`, `probabilities`), on onnxruntime."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - any unusable file is one clear line
            raise ModelFileError(f"{path} is not an ONNX classifier ({reason(error, 120)})") from None
        names = [o.name for o in self.session.get_outputs()]
        if names != list(OUTPUTS):
            raise ModelFileError(f"{path} is not a runegen classifier (outputs {names}, expected {list(OUTPUTS)})")
        self.input_name = self.session.get_inputs()[0].name
        self.num_classes = int(self.session.get_outputs()[1].shape[-1])

    def features_and_probabilities(self, images: np.ndarray):
        features, probabilities = self.session.run(None, {self.input_name: images})
        return features, probabilities


def prefer_onnx(path: Path) -> Path:
    """The .onnx twin of a .keras classifier where it exists and onnxruntime is installed."""
    import importlib.util

    twin = path.with_suffix(".onnx")
    if path.suffix == ".keras" and twin.exists() and importlib.util.find_spec("onnxruntime"):
        return twin
    return path


def load_classifier(path: Path):
    """A classifier file: .onnx (onnxruntime) or .keras (TensorFlow)."""
    from runegen.metrics import KerasClassifier

    if path.suffix == ".onnx":
        return OnnxClassifier(path)
    return KerasClassifier(_load_keras_classifier(path))


def _load_keras_classifier(path: Path):
    import zipfile

    try:
        from runegen.quiet import import_tensorflow

        import_tensorflow()
        import keras
    except ImportError:
        raise DeviceError(f"{path}: a .keras classifier needs TensorFlow: pip install 'runegen[train]' "
                         "(or use its .onnx twin)") from None

    from runegen.metrics import FEATURES_LAYER

    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a Keras classifier (not a .keras archive)")
    try:
        model = keras.saving.load_model(path, compile=False)
        model.get_layer(FEATURES_LAYER)
    except Exception as error:  # noqa: BLE001 - any unusable file is one clear line
        raise ModelFileError(f"{path} is not a runegen classifier ({reason(error, 120)})") from None
    return model


def train_and_save(dataset: GlyphDataset, target: Path | None, seed: int = 0):
    from runegen import atomic
    from runegen.metrics import train_classifier

    classifier = train_classifier(dataset, seed=seed)
    if target is not None:  # saved without the optimiser's state: a third of the size
        from runegen.metrics import build_classifier

        bare = build_classifier(len(dataset.class_names))
        bare.set_weights(classifier.get_weights())
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(target) as tmp:
            bare.save(tmp)
        with atomic.atomic_path(target.with_suffix(".onnx")) as tmp:
            _write_onnx(bare, tmp, dataset.images[:256])
    return classifier


def _write_onnx(model, target: Path, check_images: np.ndarray) -> None:
    """tf2onnx on a traced function with both outputs, then checked against Keras."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    from runegen.export.onnx import OPSET, rename_outputs
    from runegen.metrics import KerasClassifier

    keras_classifier = KerasClassifier(model)
    signature = [tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")]
    function = tf.function(lambda x: keras_classifier.both(x, training=False))
    proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
    rename_outputs(proto.graph, OUTPUTS)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, target)
    expected = keras_classifier.features_and_probabilities(check_images)
    got = OnnxClassifier(target).features_and_probabilities(check_images)
    error = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
    if error > ONNX_TOLERANCE:
        raise RuntimeError(f"the ONNX classifier differs from Keras by {error:.2e}")


def reference_images(dataset: GlyphDataset, samples: int) -> np.ndarray:
    """Real images the generator never saw (runes) or a fixed subset of its data (others)."""
    if dataset.name == "runes":
        from runegen.data import to_unit_range
        from runegen.data.runes import render_runes

        per_class = -(-samples // len(dataset.class_names))
        images, _ = render_runes(samples_per_class=per_class, seed=REFERENCE_SEED)
        pool = to_unit_range(images)
    else:
        pool = dataset.images
    picked = np.random.default_rng(REFERENCE_SEED).permutation(len(pool))[:samples]
    return pool[np.sort(picked)]
