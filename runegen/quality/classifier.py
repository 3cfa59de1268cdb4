"""The rune classifier whose features and probabilities the quality metrics use (metrics.py):
its Keras network and training, its ONNX twin, and loading either.

A small CNN is trained on the built-in data (`train_classifier`, about 10 s for the runes, with
outlier exposure); its penultimate layer, "features" (128-d, ReLU), plays the role Inception's
pool layer plays in FID. Every classifier runegen saves is written twice, .keras and .onnx, the
ONNX one checked against Keras (`train_and_save`); the .onnx twin runs on onnxruntime alone, so
scoring needs no TensorFlow. Images are float32 (N, 28, 28, 1) in [-1, 1], as everywhere in runegen.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

import numpy as np

from runegen.core import atomic
from runegen.core.errors import DeviceError, ModelFileError, reason
from runegen.core.formats import CLASSIFIER_STEM
from runegen.core.images import IMAGE_SHAPE, IMAGE_SIZE
from runegen.core.quiet import import_onnxruntime, import_tensorflow, imports, quiet_native_stderr
from runegen.data import GlyphDataset

MODELS_DIR = Path(__file__).parent.parent / "models"
SHIPPED_CLASSIFIER = MODELS_DIR / f"{CLASSIFIER_STEM}_runes.keras"  # the built-in runes'; its .onnx twin beside it
CACHED_CLASSIFIER = f"{CLASSIFIER_STEM}.keras"  # in a run folder: one trained for its data's metrics (and its .onnx)
FEATURES_LAYER = "features"
FEATURE_DIM = 128
OUTPUTS = ("features", "probabilities")  # the ONNX twin's outputs
ONNX_TOLERANCE = 1e-4  # max abs difference of the ONNX classifier's outputs from Keras'


# --- The Keras network and its training (TensorFlow) ------------------------------------------

def build_classifier(num_classes: int, feature_dim: int = FEATURE_DIM):
    """Conv(32)-pool-Conv(64)-pool-Dense(feature_dim, "features")-Dropout-Dense(num_classes, softmax)."""
    import keras
    from keras import layers

    inputs = keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)  # 14x14
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)  # 7x7
    x = layers.Flatten()(x)
    features = layers.Dense(feature_dim, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.3)(features)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="glyph_classifier")


def train_classifier(dataset: GlyphDataset, epochs: int = 5, seed: int = 0, batch_size: int = 64,
                     learning_rate: float = 2e-3, outlier_share: float = 0.25, verbose: int = 0):
    """Train the feature classifier on `dataset`; returns the compiled keras.Model.

    Besides the glyphs, it sees `outlier_share` x len(dataset) non-glyphs (noise, blobs, blank
    frames) whose target is the uniform distribution over the classes (outlier exposure, Hendrycks
    et al. 2019). Without them a plain CNN calls almost any noise image one class with confidence
    near 1, and its features of noise fall inside the real manifold: an untrained generator would
    score as recognisable and precise.

    Same seed, same data, same machine -> same weights (keras.utils.set_random_seed fixes the
    initialisation, the dropout masks and the shuffle order; the outliers come from `seed` too).
    """
    import_tensorflow()  # first, with its start-up noise kept quiet (`runegen classifier` starts here)
    import keras

    _check_images(dataset.images, "dataset.images")
    num_classes = len(dataset.class_names)
    keras.utils.set_random_seed(seed)
    outliers = outlier_images(int(round(outlier_share * len(dataset))), np.random.default_rng([seed, 1]))
    images = np.concatenate([dataset.images, outliers])
    targets = np.concatenate([np.eye(num_classes, dtype=np.float32)[dataset.labels],
                              np.full((len(outliers), num_classes), 1 / num_classes, np.float32)])
    model = build_classifier(num_classes)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                  metrics=["categorical_accuracy"])
    # Keras' input pipeline logs a harmless "NodeDef mentions attribute use_unbounded_threadpool"
    # error line from C++ when a training run trains this classifier; replayed if fit fails.
    with quiet_native_stderr() if not verbose else contextlib.nullcontext():
        model.fit(images, targets, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    return model


def outlier_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """n float32 (n, 28, 28, 1) images in [-1, 1] that are no glyph, in four kinds, mixed:
    uniform noise, sparse Gaussian speckle on black, smooth thresholded blobs, and flat frames."""
    from scipy import ndimage

    shape = (IMAGE_SIZE, IMAGE_SIZE)
    images = np.empty((n, *shape), np.float32)
    for i, kind in enumerate(rng.integers(0, 4, n)):
        if kind == 0:
            image = rng.uniform(-1, 1, shape)
        elif kind == 1:
            image = rng.normal(-1, rng.uniform(0.2, 1.0), shape)
        elif kind == 2:
            field = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(1.0, 3.0))
            image = np.where(field > np.quantile(field, rng.uniform(0.6, 0.9)), 1.0, -1.0)
            image = ndimage.gaussian_filter(image, 0.7)
        else:
            image = np.full(shape, rng.uniform(-1, 1))
        images[i] = np.clip(image, -1, 1)
    return images[..., None]


# --- Two runtimes, one interface: features_and_probabilities(images) ---------------------------

class KerasClassifier:
    """A `build_classifier` keras.Model with both outputs the metrics need, in one model built once."""

    def __init__(self, model):
        import keras

        self.model = model
        self.num_classes = int(model.output_shape[-1])
        self.class_names = None  # the .keras file keeps none: its .onnx twin does
        self.both = keras.Model(model.input, [model.get_layer(FEATURES_LAYER).output, model.outputs[0]])

    def features_and_probabilities(self, images: np.ndarray):
        features, probabilities = self.both(images, training=False)
        return np.asarray(features), np.asarray(probabilities)


class OnnxClassifier:
    """The classifier exported to ONNX (outputs `features`, `probabilities`), on onnxruntime."""

    def __init__(self, path: Path, threads: int | None = None):
        try:
            onnxruntime = import_onnxruntime()
        except ImportError:  # absent (32-bit Pi OS), or a wheel whose native library does not load
            raise ModelFileError(f"{path}: an ONNX classifier needs onnxruntime (pip install onnxruntime), "
                                 "or give its .keras original") from None

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
        # The names of the classes it learnt, in label order (written since 2026-12-06; None before)
        try:
            names = json.loads(self.session.get_modelmeta().custom_metadata_map.get("classes", "null"))
        except (ValueError, UnicodeDecodeError):
            names = None
        self.class_names = [str(name) for name in names] if isinstance(names, list) else None

    def features_and_probabilities(self, images: np.ndarray):
        features, probabilities = self.session.run(None, {self.input_name: images})
        return features, probabilities


def classifier_outputs(classifier, images: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(features float64 (N, d), class probabilities float64 (N, classes)) in inference mode.

    `classifier` is the keras.Model of `build_classifier`, or any object with a
    `features_and_probabilities(images)` method (KerasClassifier, OnnxClassifier)."""
    _check_images(images, "images")
    if not hasattr(classifier, "features_and_probabilities"):
        classifier = KerasClassifier(classifier)
    features, probabilities = [], []
    for start in range(0, len(images), batch_size):
        f, p = classifier.features_and_probabilities(
            np.ascontiguousarray(images[start:start + batch_size], np.float32))
        features.append(np.asarray(f, np.float64))
        probabilities.append(np.asarray(p, np.float64))
    return np.concatenate(features), np.concatenate(probabilities)


def accuracy(classifier, dataset: GlyphDataset) -> float:
    """Share of `dataset` whose argmax class is its label."""
    _, probabilities = classifier_outputs(classifier, dataset.images)
    return float(np.mean(probabilities.argmax(1) == dataset.labels))


# --- Loading and saving: .keras and its checked .onnx twin -------------------------------------

def prefer_onnx(path: Path) -> Path:
    """The .onnx twin of a .keras classifier where it exists and onnxruntime imports."""
    twin = path.with_suffix(".onnx")
    if path.suffix == ".keras" and twin.exists() and imports("onnxruntime"):
        return twin
    return path


def load_classifier(path: Path):
    """A classifier file: .onnx (onnxruntime) or .keras (TensorFlow)."""
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a classifier file (.onnx or .keras)")
    # Anything else was read as .keras ("needs TensorFlow" on the edge); Keras reads only ".keras"
    if path.suffix.lower() != ".onnx" and path.suffix != ".keras":
        raise ModelFileError(f"{path}: not a classifier file (.onnx or .keras)")
    onnx = path.suffix.lower() == ".onnx"
    classifier = OnnxClassifier(path) if onnx else KerasClassifier(_load_keras_classifier(path))
    if classifier.class_names is None and is_shipped(path):  # it came before the names were written
        from runegen.data.runes import CLASS_NAMES

        classifier.class_names = list(CLASS_NAMES)
    return classifier


def is_shipped(path: Path) -> bool:
    """Whether `path` is the shipped rune classifier (its .keras file or its .onnx twin)."""
    try:
        return path.with_suffix(".keras").resolve() == SHIPPED_CLASSIFIER.resolve()
    except OSError:
        return False


def _load_keras_classifier(path: Path):
    try:
        import_tensorflow()
        import keras
    except ImportError:  # (a Ctrl-C while it loaded is Stopped, from import_tensorflow)
        twin = path.with_suffix(".onnx")  # prefer_onnx passed it over only where onnxruntime is missing
        hint = ("its .onnx twin needs onnxruntime: pip install onnxruntime" if twin.exists()
                else "or give an .onnx classifier")
        raise DeviceError(f"{path}: a .keras classifier needs TensorFlow: pip install 'runegen[train]' "
                         f"({hint})") from None

    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a Keras classifier (not a .keras archive)")
    try:
        model = keras.saving.load_model(path, compile=False)
        model.get_layer(FEATURES_LAYER)
    except Exception as error:  # noqa: BLE001 - any unusable file is one clear line
        raise ModelFileError(f"{path} is not a runegen classifier ({reason(error, 120)})") from None
    return model


def train_and_save(dataset: GlyphDataset, target: Path | None, seed: int = 0):
    """A classifier trained on `dataset`; saved to `target` (.keras) and its .onnx twin if given."""

    classifier = train_classifier(dataset, seed=seed)
    if target is not None:  # saved without the optimiser's state: a third of the size
        bare = build_classifier(len(dataset.class_names))
        bare.set_weights(classifier.get_weights())
        target.parent.mkdir(parents=True, exist_ok=True)
        # Both written before either is renamed into place: a stop between the two writes left
        # the .keras file without its twin, and the command refuses an --out that exists.
        with atomic.atomic_path(target) as keras_tmp, atomic.atomic_path(target.with_suffix(".onnx")) as onnx_tmp:
            bare.save(keras_tmp)
            _write_onnx(bare, onnx_tmp, dataset.images[:256], dataset.class_names)
    return classifier


def _write_onnx(model, target: Path, check_images: np.ndarray, class_names) -> None:
    """tf2onnx on a traced function with both outputs, the class names in its metadata (a classifier
    of other classes, as many, scored class accuracy 0.121 where its own scored 1.000), then
    checked against Keras."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    from runegen.export.onnx import OPSET, rename_outputs
    keras_classifier = KerasClassifier(model)
    signature = [tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")]
    function = tf.function(lambda x: keras_classifier.both(x, training=False))
    proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
    rename_outputs(proto.graph, OUTPUTS)
    onnx.helper.set_model_props(proto, {"classes": json.dumps(list(class_names))})
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, target)
    expected = keras_classifier.features_and_probabilities(check_images)
    got = OnnxClassifier(target).features_and_probabilities(check_images)
    error = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
    if error > ONNX_TOLERANCE:
        # `target` is the temporary file: it is removed, not renamed into place
        raise ModelFileError(f"the classifier's ONNX twin differs from Keras by {error:.2e} (at most "
                             f"{ONNX_TOLERANCE:.0e} is taken): not written")


def _check_images(images: np.ndarray, what: str) -> None:
    shape = tuple(np.shape(images))
    if len(shape) != 4 or shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{what}: expected shape (N, 28, 28, 1), got {shape}")
