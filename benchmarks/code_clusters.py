"""What the latent codes of a trained run stand for: the clusters of real runes D's Q head reads.

A self-conditioned run (runegen/training/gan.py) draws codes uniformly and asks each code to match
the real glyphs Q files under it. Runes come out unevenly when (a) Q's clusters hold unequal shares
of the real data, or (b) a code's cluster mixes runes and G draws some of them more often than the
cluster has them. This script measures both from a run's last checkpoint, with the rune labels
(which training never sees) and the shipped rune classifier for the generated glyphs:

- each code's share of the real runes (even: 1/codes), and how pure each cluster is (its most
  common rune's share);
- the runes the codes would draw (uniformly, or by the run's learned code prior) if every code
  drew its cluster exactly;
- how far each code's generated runes are from its cluster's (total variation), and the runes the
  generator actually draws, its codes drawn the same way;
- how often Q still reads the same code when a real rune moves by one or two pixels.

    python benchmarks/code_clusters.py runs/train [--per-code 40]

A record, not a test: nothing asserts it. Built-in runes only; needs TensorFlow.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from runegen.core.errors import RunegenError, RunStateError
from runegen.core.latents import latents
from runegen.data import load_dataset
from runegen.data.runes import CLASS_NAMES
from runegen.quality.classifier import classifier_outputs
from runegen.quality.scorer import Scorer
from runegen.training.config import TrainConfig, load_config
from runegen.training.run import Run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_settings import positive_int  # noqa: E402

CHUNK = 500
SHIFTS = [(1, 0), (0, 1), (2, 0), (0, 2)]  # (down, right) in pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder with checkpoints (the latest is read)")
    parser.add_argument("--per-code", type=positive_int, default=40, help="generated glyphs per code")
    args = parser.parse_args()

    try:  # a folder that holds no run, or no checkpoint of one: one line, not a traceback
        config = load_config(args.run)
        dataset = load_dataset(config.data, config.samples_per_class, config.seed)
        with tempfile.TemporaryDirectory(prefix="code-clusters-") as folder:  # a Run writes logs: not into
            report(args, config, dataset, Path(folder))  # the run read; removed on any exit
    except RunegenError as error:
        parser.error(str(error))


def report(args, config, dataset, scratch: Path) -> None:
    # Without one, Run.restore() keeps the new networks' random weights: a record of nothing.
    if not (args.run / "checkpoints" / "checkpoint").is_file():
        raise RunStateError(f"{args.run}: no checkpoint (a run folder with checkpoints/, not an export)")
    shutil.copy2(args.run / "config.json", scratch)
    shutil.copytree(args.run / "checkpoints", scratch / "checkpoints")
    run = Run(config, scratch, dataset)
    try:
        run.restore()
    except RunStateError as error:  # it names the scratch copy, gone by the time it is read
        raise RunStateError(str(error).replace(str(scratch), str(args.run))) from None
    codes, runes = run.codes, len(CLASS_NAMES)
    if not (codes and run.gan.self_conditioned):
        raise RunStateError(f"{args.run}: not a run with latent codes and a self-conditioned D")

    def read(images):
        """The code Q reads in each image (as D does for real images: code -1)."""
        import tensorflow as tf

        return np.concatenate([np.asarray(run.gan.discriminator(
            [tf.constant(images[i:i + CHUNK]), tf.fill([len(images[i:i + CHUNK])], -1)], training=False)[1],
            np.float32)[:, :codes].argmax(axis=1) for i in range(0, len(images), CHUNK)])

    real_codes = read(dataset.images)
    share = np.bincount(real_codes, minlength=codes) / len(real_codes)
    clusters = np.zeros((codes, runes))
    np.add.at(clusters, (real_codes, dataset.labels), 1)
    cluster_runes = clusters / np.maximum(clusters.sum(axis=1, keepdims=True), 1)
    print(f"real runes per code: {share.min():.2%} to {share.max():.2%} (even {1 / codes:.2%}), "
          f"{(share == 0).sum()} codes empty", flush=True)
    print(f"cluster purity (its most common rune's share), mean over codes: "
          f"{cluster_runes.max(axis=1)[share > 0].mean():.3f}", flush=True)
    # How often each code is drawn: its learned prior (--code-prior), else uniformly.
    prior = np.asarray(run.code_weights() or np.full(codes, 1.0 / codes))
    prior = prior / prior.sum()
    drawn_as = "by the code prior" if run.code_weights() else "uniformly"
    implied = prior @ cluster_runes * 2400
    print(f"runes per 2,400 if each code, drawn {drawn_as}, drew its cluster exactly:",
          np.round(implied).astype(int).tolist(), flush=True)

    labels = np.repeat(np.arange(codes), args.per_code)
    z = latents(len(labels), config.latent_dim, 3, codes, labels)
    fakes = np.concatenate([np.asarray(run.gan.sampler(z[i:i + CHUNK], training=False), np.float32)
                            for i in range(0, len(z), CHUNK)])
    scorer = Scorer.for_dataset(load_dataset("runes", 1, 0), TrainConfig.eval_samples)
    drawn = classifier_outputs(scorer.classifier, fakes)[1].argmax(axis=1)
    generated = np.zeros((codes, runes))
    np.add.at(generated, (labels, drawn), 1.0 / args.per_code)
    distance = 0.5 * np.abs(generated - cluster_runes).sum(axis=1)
    print(f"generated vs cluster runes, total variation per code: mean {distance[share > 0].mean():.3f}",
          flush=True)
    print(f"runes per 2,400 the generator draws (codes drawn {drawn_as}):",
          np.round(prior @ generated * 2400).astype(int).tolist(), flush=True)
    for code in [c for c in np.argsort(-distance) if share[c] > 0][:5]:
        real_top, fake_top = np.argsort(-cluster_runes[code])[:3], np.argsort(-generated[code])[:3]
        print(f"  code {code}: real " + ", ".join(f"{CLASS_NAMES[r]} {cluster_runes[code, r]:.2f}" for r in real_top)
              + " | generated " + ", ".join(f"{CLASS_NAMES[r]} {generated[code, r]:.2f}" for r in fake_top), flush=True)

    for down, right in SHIFTS:
        moved = np.roll(np.roll(dataset.images, down, axis=1), right, axis=2)  # what rolls over is background
        print(f"real runes moved {down} down, {right} right: same code read for "
              f"{np.mean(read(moved) == real_codes):.1%}", flush=True)


if __name__ == "__main__":
    main()
