"""Score a generator against held-out real glyphs, with the metrics of metrics.py on the features
of the classifier of classifier.py.

One `Scorer` holds what a score needs besides the generator: the classifier and the real
reference images (their features computed once). The same Scorer serves `runegen evaluate` (any
exported format, through the runtime) and training's evaluation every `--eval-every` epochs.

- Classifier: the shipped one for the built-in runes (runegen/models/classifier_runes.onnx, run
  by onnxruntime: no TensorFlow needed; or its .keras original), a file given with --classifier,
  or one trained on the spot (about 10 s for the runes).
  Data of one class (a flat image folder: no labels) cannot train a classifier, which needs
  classes to tell apart; its features come from the shipped rune classifier instead, a general
  glyph feature extractor as Inception is for FID, and the class metrics (recognisability,
  coverage) are left out: they would say how rune-like the samples are. Dark glyphs on a light
  ground are inverted first (the classifier learnt light on black, and sees nothing in the
  other); data it still sees nothing in is refused rather than scored with features next to zero.
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

from runegen.core.errors import DataError, ModelFileError, RunegenError
from runegen.core.latents import latents, spread
from runegen.core.quiet import installed
from runegen.data import GlyphDataset, dark_on_light, to_unit_range
from runegen.data.runes import render_runes
from runegen.quality.classifier import (CACHED_CLASSIFIER, SHIPPED_CLASSIFIER, KerasClassifier, classifier_outputs,
                                        is_shipped, load_classifier, prefer_onnx, train_and_save)
from runegen.quality.metrics import scores

REFERENCE_SEED = 90_001  # drawing seed of the held-out real runes
EVAL_SEED = 7  # the generated samples' latents
CHUNK = 256
MIN_REFERENCE = 10  # real images a score needs at least (the k-NN metrics need k + 1: 4 and 6)
UNSEEN_LIMIT = 0.1  # share of real images the rune classifier may see nothing in, for data it was not trained on
# Feature length under which the rune classifier sees no glyph: blank frames and noise give 0.034 at
# most, runes 17 and more, digits in Pillow's font 11 and more.
NO_GLYPH_NORM = 1.0


@dataclass
class Scorer:
    classifier: object  # KerasClassifier or OnnxClassifier (classifier.py)
    real_images: np.ndarray
    samples: int
    class_metrics: bool = True  # False: the classifier's classes are not the data's
    invert: bool = False  # dark glyphs on a light ground, shown to the rune classifier light on dark

    def __post_init__(self):
        # The reference's features, once: training scores twice per evaluation (EMA and live).
        self.real_features, _ = self.outputs(self.real_images)

    def outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features, class probabilities) of images in [-1, 1], inverted first if `invert`."""
        return classifier_outputs(self.classifier, -images if self.invert else images)

    @classmethod
    def for_dataset(cls, dataset: GlyphDataset, samples: int, classifier_path: Path | None = None,
                    cache: Path | None = None, log: Callable[[str], None] = lambda line: None) -> "Scorer":
        """The classifier: `classifier_path`, else the shipped one (the built-in runes, or data of
        one class), else one cached in `cache` (a run folder), else one trained now (and saved to
        `cache` if given)."""
        if not dataset.built_in and len(dataset) < MIN_REFERENCE:
            raise DataError(f"{dataset.asked}: {len(dataset)} images, too few to score (at least {MIN_REFERENCE})")
        if classifier_path is not None and not classifier_path.exists():
            raise ModelFileError(f"{classifier_path}: no such file")
        unlabelled = len(dataset.class_names) < 2
        shipped = SHIPPED_CLASSIFIER if unlabelled or dataset.built_in else None
        path = classifier_path or shipped
        if path is None or not path.exists():
            path = cache / CACHED_CLASSIFIER if cache is not None else None
        if path is not None and path.exists():
            classifier = load_classifier(prefer_onnx(path))
        else:
            if not installed("tensorflow"):
                raise DataError(f"{dataset.asked}: labelled data without a classifier for its classes; training "
                                "one needs TensorFlow (pip install 'runegen[train]'), or give a trained one")
            log(f"training a classifier on {dataset.asked} for the metrics ...")
            classifier = KerasClassifier(train_and_save(dataset, path))
        if not unlabelled and classifier.num_classes != len(dataset.class_names):
            raise RunegenError(f"the classifier knows {classifier.num_classes} classes, "
                             f"the data {dataset.asked} has {len(dataset.class_names)}")
        learnt = classifier.class_names  # None for one written before it kept them
        if not unlabelled and learnt is not None and learnt != list(dataset.class_names):
            k = next(k for k, (a, b) in enumerate(zip(learnt, dataset.class_names)) if a != b)
            raise RunegenError(f"the classifier learnt other classes than {dataset.asked}'s, or in another order "
                               f"(its class {k} is {learnt[k]!r}, the data's {dataset.class_names[k]!r}): "
                               "its labels would score the wrong class")
        # Data of one class on the rune classifier's features: shown as it learnt glyphs (light on
        # dark), and refused where it still sees nothing in them.
        # The shipped classifier named with --classifier too (it was then never inverted: dark runes on
        # white scored FD 0).
        foreign = unlabelled and (classifier_path is None or is_shipped(classifier_path))
        real = reference_images(dataset, samples)
        scorer = cls(classifier, real, samples, class_metrics=not unlabelled, invert=foreign and dark_on_light(real))
        if foreign:
            unseen = float(np.mean(np.linalg.norm(scorer.real_features, axis=1) < NO_GLYPH_NORM))
            if unseen > UNSEEN_LIMIT:
                raise DataError(f"{dataset.asked}: the rune classifier sees no glyph in {unseen:.0%} of these images "
                                "(features next to zero); only a classifier trained on labelled images of their kind "
                                "can score them")
            log(f"{dataset.asked} has one class (no labels): scoring with the rune classifier's features"
                f"{' (dark glyphs on a light ground, inverted first)' if scorer.invert else ''}, without recognisability")
        return scorer

    def score(self, generate: Callable[[np.ndarray], np.ndarray], width: int, num_classes: int = 0,
              codes: int = 0, code_weights=None) -> dict:
        """Every metric of `generate` (model inputs of `width` -> images in [-1, 1]); codes drawn
        in proportion to `code_weights` where the generator has a code prior."""
        fakes, labels = draw(generate, width, num_classes, self.samples, codes, code_weights)
        if not np.isfinite(fakes).all():  # a diverged generator: no metric means anything
            raise ModelFileError(f"the generator draws non-finite values (NaN or infinity) in "
                                 f"{np.mean(~np.isfinite(fakes).all(axis=(1, 2, 3))):.0%} of its images; nothing to score")
        fake_features, fake_probabilities = self.outputs(fakes)
        if not self.class_metrics:
            fake_probabilities = labels = None
        return scores(self.real_features, fake_features, fake_probabilities, labels)

    def score_generator(self, generator) -> dict:
        """Every metric of a loaded runtime Generator (runegen/runtime/generator.py), drawn as it
        draws its own latents."""
        return self.score(generator.generate, generator.latent_dim, generator.num_classes, generator.codes,
                          generator.code_weights)


def draw(generate: Callable[[np.ndarray], np.ndarray], width: int, num_classes: int, samples: int,
         codes: int = 0, code_weights=None):
    """(images (samples, 28, 28, 1), labels or None): `generate` on the fixed inputs of EVAL_SEED,
    a conditional generator asked for every class in turn (the labels), a generator with latent
    codes for every code in turn, or each as often as its code prior says (codes are no classes:
    no labels)."""
    one_hot = num_classes or codes
    labels = spread(samples, one_hot, None if num_classes else code_weights) if one_hot else None
    z = latents(samples, width, EVAL_SEED, one_hot, labels)
    fakes = np.concatenate([generate(z[i:i + CHUNK]) for i in range(0, len(z), CHUNK)])
    return fakes.reshape(-1, 28, 28, 1), labels if num_classes else None


def compare(classifier, real_images: np.ndarray, fake_images: np.ndarray, *, labels=None, **options) -> dict:
    """Every metric of generated vs real images (metrics.scores, whose `options` it takes), from the
    classifier's "features" layer; `classifier` a KerasClassifier, an OnnxClassifier or the
    keras.Model of classifier.build_classifier."""
    real_features, _ = classifier_outputs(classifier, real_images)
    fake_features, fake_probabilities = classifier_outputs(classifier, fake_images)
    return scores(real_features, fake_features, fake_probabilities, labels, **options)


def reference_images(dataset: GlyphDataset, samples: int) -> np.ndarray:
    """Real images the generator never saw (runes) or a fixed subset of its data (others)."""
    if dataset.built_in:
        per_class = -(-samples // len(dataset.class_names))
        images, _ = render_runes(samples_per_class=per_class, seed=REFERENCE_SEED)
        pool = to_unit_range(images)
    else:
        pool = dataset.images
    picked = np.random.default_rng(REFERENCE_SEED).permutation(len(pool))[:samples]
    return pool[np.sort(picked)]
