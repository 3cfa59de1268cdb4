"""How evenly a generator draws the 24 runes, and what that unevenness alone costs FD.

FD compares the Gaussians fitted to the classifier's features of generated and real runes; a
generator that draws some runes twice as often as others moves the mean and covariance even when
every glyph is perfect. This script measures both halves of that, with the shipped rune classifier:

1. which rune each sample is (the classifier's argmax), over `--samples` latents drawn as the
   generator's own runtime draws them (an equal number per latent code when it has codes, or each
   code as often as its learned prior says), and
   the two runes each code draws most;
2. the FD, precision and recall of *real* runes drawn with those same rune proportions, against
   the held-out reference, beside real runes drawn evenly: the floor that the unevenness alone
   puts under the generator's FD.

    python benchmarks/class_balance.py runs/train/generator.keras [--samples 2400] [--per-code]

A record, not a test: nothing asserts it. Any format the runtime loads (.keras needs TensorFlow).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from runegen.core.errors import RunegenError
from runegen.core.latents import spread
from runegen.data import load_dataset, to_unit_range
from runegen.data.runes import CLASS_NAMES, render_runes
from runegen.quality.classifier import classifier_outputs
from runegen.quality.metrics import scores
from runegen.quality.scorer import Scorer
from runegen.runtime import load_generator
from runegen.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_settings import positive_int  # noqa: E402

SHOWN = ("fd", "precision", "recall", "recognisability")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--samples", type=positive_int, default=2400)
    parser.add_argument("--per-code", action="store_true", help="also the two runes each code draws most")
    args = parser.parse_args()

    try:
        generator = load_generator(args.model)
    except RunegenError as error:  # a missing file, a folder, not a model: one line, not a traceback
        parser.error(str(error))
    codes = generator.codes
    labels = spread(args.samples, codes, generator.code_weights) if codes else None
    images = generator.generate(generator.inputs(args.samples, seed=3, labels=labels))
    scorer = Scorer.for_dataset(load_dataset("runes", 1, 0), TrainConfig.eval_samples)
    _, probabilities = classifier_outputs(scorer.classifier, images)
    drawn = probabilities.argmax(axis=1)
    counts = np.bincount(drawn, minlength=len(CLASS_NAMES))
    even = args.samples / len(CLASS_NAMES)
    print(f"samples per rune (of {args.samples}; even: {even:.0f}):", counts.tolist(), flush=True)
    print(f"fewest {counts.min()} ({CLASS_NAMES[counts.argmin()]}), most {counts.max()} "
          f"({CLASS_NAMES[counts.argmax()]}): {counts.max() / even:.2f}x even", flush=True)
    if args.per_code and codes:
        for code in np.unique(labels):  # with a code prior, a rarely drawn code may get no sample
            share = np.bincount(drawn[labels == code], minlength=len(CLASS_NAMES)) / (labels == code).sum()
            first, second = np.argsort(-share)[:2]
            print(f"code {code:2d}: {CLASS_NAMES[first]} {share[first]:.0%}, {CLASS_NAMES[second]} {share[second]:.0%}")

    real, real_labels = render_runes(300, seed=4242)  # neither the training nor the reference seed
    real = to_unit_range(real)
    if (counts[real_labels] > 0).sum() < scorer.samples:  # else rng.choice below fails with a traceback
        parser.error(f"--samples {args.samples}: the generator drew only {np.count_nonzero(counts)} of the "
                     f"{len(CLASS_NAMES)} runes, too few real ones of those for the {scorer.samples} an FD takes")
    rng = np.random.default_rng(0)
    for name, proportions in [("real runes, even", np.ones(len(CLASS_NAMES))),
                              ("real runes, the generator's proportions", counts.astype(float))]:
        weights = proportions[real_labels] / proportions[real_labels].sum()
        picked = rng.choice(len(real), scorer.samples, replace=False, p=weights)
        features, real_probabilities = classifier_outputs(scorer.classifier, real[picked])
        result = scores(scorer.real_features, features, real_probabilities, None)
        print(f"{name}: " + "  ".join(f"{k} {result[k]:.3f}" for k in SHOWN), flush=True)


if __name__ == "__main__":
    main()
