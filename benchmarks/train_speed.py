"""Training speed: runegen's training loop against the TensorFlow DCGAN tutorial's, in one run.

Same model (s1), same data (the built-in runes), same batch size, same machine. The tutorial loop
is copied from tensorflow.org/tutorials/generative/dcgan (a tf.function step with two tapes,
Adam(1e-4), `for image_batch in dataset: train_step(image_batch)`). runegen is timed through its
real `Run.train` (per-step NaN check and progress included), fp32 and bf16.

    python benchmarks/train_speed.py [--batch-size 256] [--rounds 4] [--json out.json]

Prints images/s for each and the ratio to the tutorial. A figure, not a test: nothing asserts it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def tutorial_epoch(images: np.ndarray, batch_size: int):
    """The tutorial's own loop, unchanged but for timing; returns a function that runs one epoch
    and reports its images/s."""
    import tensorflow as tf

    from runegen.nets import s1_discriminator, s1_generator

    generator, discriminator = s1_generator(), s1_discriminator()
    cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = tf.keras.optimizers.Adam(1e-4)
    discriminator_optimizer = tf.keras.optimizers.Adam(1e-4)
    dataset = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images)).batch(batch_size)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([batch_size, 100])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(
            zip(gradients_of_discriminator, discriminator.trainable_variables))

    def one_epoch() -> float:
        start, seen = time.perf_counter(), 0
        for image_batch in dataset:
            train_step(image_batch)
            seen += int(image_batch.shape[0])
        generator_optimizer.iterations.numpy()  # wait for the last step
        return seen / (time.perf_counter() - start)

    return one_epoch


class _NoProgress:
    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        pass


def runegen_epoch(dataset, batch_size: int, precision: str, folder: Path):
    """runegen's real loop (per-step NaN check and progress included), one epoch per call."""
    from runegen.train import Run, TrainConfig

    run = Run(TrainConfig(batch_size=batch_size, epochs=0, precision=precision,
                          checkpoint_every=10_000), folder, dataset)
    (folder / "samples").mkdir(parents=True)

    def one_epoch() -> float:
        run.config.epochs += 1
        run.train(_NoProgress())
        last_row = (folder / "metrics.csv").read_text().splitlines()[-1]
        return float(last_row.split(",")[5])

    return one_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4,
                        help="timed epochs per loop, interleaved across loops; one untimed warm-up")
    parser.add_argument("--samples-per-class", type=int, default=400)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import tensorflow as tf

    from runegen.data import load_dataset

    dataset = load_dataset("runes", args.samples_per_class, seed=0)
    with tempfile.TemporaryDirectory() as scratch:
        loops = {"tutorial_fp32": tutorial_epoch(dataset.images, args.batch_size)}
        for precision in ("fp32", "bf16"):
            loops[f"runegen_{precision}"] = runegen_epoch(dataset, args.batch_size, precision,
                                                          Path(scratch) / precision)
        # Interleaved rounds: the shared machine's speed drifts (2x swings were seen), and
        # interleaving exposes every loop to the same drift. Round 0 (tracing) is not kept.
        rates = {name: [] for name in loops}
        for round_index in range(args.rounds + 1):
            for name, one_epoch in loops.items():
                rate = one_epoch()
                if round_index:
                    rates[name].append(rate)

    baseline = float(np.median(rates["tutorial_fp32"]))
    print(f"training images/s, s1, batch {args.batch_size}, {len(dataset)} rune images, "
          f"{os.cpu_count()} cores, TensorFlow {tf.__version__}, median of {args.rounds} interleaved epochs")
    for name, values in rates.items():
        median = float(np.median(values))
        print(f"  {name:<16} {median:8.1f} img/s   {median / baseline:5.2f}x tutorial   "
              f"(epochs: {', '.join(f'{v:.0f}' for v in values)})")
    if args.json:
        args.json.write_text(json.dumps({"batch_size": args.batch_size, "images": len(dataset),
                                         "cpu": platform.processor() or platform.machine(),
                                         "cores": os.cpu_count(), "images_per_s": rates}, indent=2))


if __name__ == "__main__":
    main()
