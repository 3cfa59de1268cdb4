"""The training run: data pipeline, the DCGAN step, checkpoints, samples, logs.

A run folder holds everything a run makes:
    config.json           the resolved settings (what --resume reads back)
    classes.json          the class names in label order (config.json and classes.json are
                          written by runegen/commands/train.py)
    samples/epoch_NNN.png a grid from fixed noise after each epoch; progress.gif strings them
    metrics.csv           per epoch: losses, D(x), D(G(z)), images/s; every --eval-every epochs
                          the quality metrics of runegen/quality/scorer.py (FD, KID, precision, ...);
                          it and progress.gif are written by runegen/training/logs.py
    tensorboard/          the same scalars and the grids, for TensorBoard
    checkpoints/          the last two (max_to_keep=2): G, D, G's weight average (EMA), both
                          optimisers, the code prior's frequencies (--code-prior), noise and
                          dropout RNG state, epoch, step and the epoch's running loss sums;
                          data.json, the data's size and classes (runegen/training/resume.py)
    classifier.keras      labelled data other than the runes, with --eval-every: the classifier
                          trained for its metrics, and its .onnx twin
    generator.keras       the final generator alone (the weight average when EMA is on),
                          float32, ready for inference and export
    code_weights.json     with --code-prior: how often each latent code is drawn
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from runegen.core import atomic, images
from runegen.core.errors import RunStateError, reason
from runegen.core.latents import CODE_WEIGHTS_FILE, latents
from runegen.core.quiet import import_tensorflow
from runegen.data import GlyphDataset
from runegen.quality.scorer import Scorer
from runegen.training.config import PRECISIONS, TrainConfig, resolve_deterministic, resolve_precision
from runegen.training.logs import append_metrics, save_progress_gif
from runegen.training.resume import (StopRequest, TrainingStopped, check_same_data, checkpoint_state,
                                     mend_checkpoint_state, readable_checkpoints, tensorflow_log_quiet)
from runegen.training.tf_settings import configure_tensorflow, without_autotune

METRICS = ("g_loss", "d_loss", "d_real", "d_fake", "code_accuracy")
QUALITY_SHOWN = ("fd", "precision", "recall", "recognisability", "class_accuracy")
RAW_SCORES = ("fd", "kid", "precision", "recall", "recognisability", "class_coverage", "class_accuracy")
GRID_SAMPLES = 64


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class Run:
    """One training run in its folder, fresh or resumed."""

    def __init__(self, config: TrainConfig, out: Path, dataset: GlyphDataset, strategy=None, scorer=None):
        """strategy: from runegen.training.distribute.make_strategy(config.devices), made by the caller
        before any other TensorFlow work when it may be a cluster's (made here when None). scorer:
        the quality/scorer.py Scorer of `dataset` if the caller has built it already."""
        tf = import_tensorflow()  # first, with its start-up noise kept quiet
        import keras

        from runegen.training import distribute
        from runegen.training.gan import DCGAN
        from runegen.training.nets import PRESETS

        self.strategy = strategy or distribute.make_strategy(config.devices)
        self.chief = distribute.is_chief()
        distribute.check_replica_settings(config, self.strategy.num_replicas_in_sync)  # before the nets
        config = dataclasses.replace(config, precision=resolve_precision(config.precision),
                                     deterministic=resolve_deterministic(config.deterministic))
        self.config, self.out, self.dataset = config, out, dataset
        self.steps_per_epoch = len(self.dataset) // config.batch_size

        # Same seed, same data, same machine -> same weights: seeds alone are not enough, as CPU
        # kernels may reduce in a thread-dependent order, and Adam turns rounding-level gradient
        # differences into lr-sized weight differences within a few steps (seen once in the suite).
        keras.utils.set_random_seed(config.seed)
        configure_tensorflow(tf, config.deterministic)  # resolved above
        preset, dtype = PRESETS[config.preset], PRECISIONS[config.precision]
        self.num_classes = len(dataset.class_names) if config.conditional else 0
        self.codes = config.latent_codes
        with self.strategy.scope():
            generator, discriminator = preset.pair_for(config, self.num_classes, dtype)
            ema_generator = (preset.generator(config.latent_dim, dtype=dtype, num_classes=self.num_classes)
                             if config.ema else None)
        if self.strategy.num_replicas_in_sync > 1:
            distribute.synchronize_batch_norm(generator)
            distribute.synchronize_batch_norm(discriminator)
        self.gan = DCGAN(generator, discriminator, config, self.num_classes, ema_generator, self.strategy,
                         total_steps=config.epochs * self.steps_per_epoch, ground=dataset.ground)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.epoch_sums = tf.Variable(tf.zeros(len(METRICS), tf.float64), trainable=False)
        self.checkpoints = self._checkpoint_manager(tf, ema_generator)

        # The grid: 64 fixed latents, or 4 per class (conditional) or per code, one per column.
        one_hot = self.num_classes or self.codes
        self.grid_columns = one_hot or 8
        grid_labels = np.tile(np.arange(one_hot), 4) if one_hot else None
        self.fixed_latents = latents(len(grid_labels) if one_hot else GRID_SAMPLES,
                                     config.latent_dim + self.num_classes, config.seed, one_hot, grid_labels)
        self.real_images = tf.data.Dataset.from_tensor_slices(
            (self.dataset.images, self.dataset.labels.astype(np.int32))).cache()
        self.scorer = scorer  # else built at the first evaluation: it loads or trains a classifier
        self.summary_writer = None  # made as training starts: a refused or no-op --resume left an empty event file

    def _checkpoint_manager(self, tf, ema_generator):
        """Everything a resume needs, saved together in the run's checkpoints/ (two kept)."""
        # Dropout's seed generators are Keras variables that tf.train.Checkpoint does not find
        # through the model, so they are named here: without them a resume differs.
        dropout_rng = [v.value for v in self.gan.discriminator.variables
                       if "seed_generator_state" in v.path]
        optional = {"ema_generator": ema_generator} if ema_generator is not None else {}
        if self.gan.code_frequency is not None:
            optional["code_frequency"] = self.gan.code_frequency
        checkpoint = tf.train.Checkpoint(
            generator=self.gan.generator, discriminator=self.gan.discriminator,
            g_optimizer=self.gan.g_optimizer, d_optimizer=self.gan.d_optimizer,
            noise=self.gan.noise, dropout_rng=dropout_rng, epoch=self.epoch,
            step_in_epoch=self.step_in_epoch, epoch_sums=self.epoch_sums, **optional)
        # A save moves the data files into place, then writes ckpt-N.index (a kill can leave it
        # partial), then checkpoints/checkpoint, atomically. Every worker of a cluster saves (saving
        # is collective); all but the chief into scratch.
        folder = self.out / "checkpoints" if self.chief else Path(tempfile.mkdtemp(prefix="runegen-worker-"))
        if self.chief:
            mend_checkpoint_state(folder)
        return tf.train.CheckpointManager(checkpoint, folder, max_to_keep=2)

    # -- data -----------------------------------------------------------------------------
    def batches(self, epoch: int, skip: int):
        """This epoch's shuffled batches; the order depends only on (seed, epoch), so a resumed
        run skips exactly the batches the interrupted one had consumed."""
        order_seed = (self.config.seed * 1_000_003 + epoch) % 2**31
        return without_autotune(self.real_images
                                .shuffle(len(self.dataset), seed=order_seed, reshuffle_each_iteration=False)
                                .batch(self.config.batch_size, drop_remainder=True)
                                .skip(skip)
                                .prefetch(2))

    # -- the loop -------------------------------------------------------------------------
    def restore(self) -> bool:
        """Restore the last checkpoint; False where the run was stopped before its first one (it
        then trains from the beginning)."""
        import tensorflow as tf

        # Every worker restores the chief's checkpoint (a cluster resumes from a shared folder).
        # TensorFlow logs an ERROR line of its own when the index names files that are gone; the
        # one line the user gets is the RunStateError below.
        folder = self.out / "checkpoints"
        state = checkpoint_state(folder)
        with tensorflow_log_quiet():
            latest = tf.train.latest_checkpoint(folder) if state is not None else None
        if state is None:  # lost: the chief has mended it, but a worker may read before it did
            readable = readable_checkpoints(folder)
            latest = readable[-1] if readable else None
        check_same_data(self.out, self.dataset)
        if latest is None and not (folder / "checkpoint").exists():
            return False
        if latest is None:  # an index whose files are gone, or an unreadable note and no checkpoint
            raise RunStateError(f"no checkpoint in {self.out / 'checkpoints'}")
        try:
            self.checkpoints.checkpoint.restore(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, IndexError, AssertionError) as error:  # truncated, or another model's
            raise RunStateError(f"{latest}: cannot restore this run's networks from it ({reason(error)})") from None
        return True

    def train(self, progress, log=lambda line: None) -> None:
        """Train to config.epochs. `progress` is a rich Progress (or alike); `log` gets one line
        per epoch, for logs that are not a terminal."""
        start_epoch, start_step = int(self.epoch.numpy()), int(self.step_in_epoch.numpy())
        if self.chief and self.summary_writer is None:
            self.summary_writer = import_tensorflow().summary.create_file_writer(str(self.out / "tensorboard"))
        stop = StopRequest()
        with stop:
            for epoch in range(start_epoch, self.config.epochs):
                task = progress.add_task(f"epoch {epoch + 1}/{self.config.epochs}",
                                         total=self.steps_per_epoch, completed=start_step, stats="")
                started, step = time.perf_counter(), start_step
                for real_images, real_labels in self.batches(epoch, start_step):
                    values = {k: float(v) for k, v in self.gan.train_step(real_images, real_labels).items()}
                    if not all(math.isfinite(v) for v in values.values()):
                        raise TrainingDiverged(
                            f"training diverged at epoch {epoch + 1}, step {step + 1} "
                            f"({', '.join(f'{k}={v:.4g}' for k, v in values.items())}); "
                            f"last good checkpoint: {self.checkpoints.latest_checkpoint or 'none'}")
                    step += 1
                    self.epoch_sums.assign_add([values[k] for k in METRICS])
                    rate = (step - start_step) * self.config.batch_size / (time.perf_counter() - started)
                    progress.update(task, completed=step, stats=(
                        f"G {values['g_loss']:.3f}  D {values['d_loss']:.3f}  "
                        f"D(x) {values['d_real']:.2f}  D(G(z)) {values['d_fake']:.2f}  {rate:,.0f} img/s"))
                    if stop.requested:
                        self.step_in_epoch.assign(step)
                        self._check_finite_weights(epoch, step)
                        path = self.checkpoints.save(checkpoint_number=self._global_step(epoch, step))
                        raise TrainingStopped(f"{stop.requested}; checkpoint saved: {path}", stop.exit_code)
                log(self._end_epoch(epoch, started, step - start_step, progress, task))
                start_step = 0
            if stop.requested:  # heard while the last epoch ended (its checkpoint saved): not let pass
                raise TrainingStopped(f"{stop.requested} as training ended; checkpoint saved: "
                                      f"{self.checkpoints.latest_checkpoint}", stop.exit_code)

    def _check_finite_weights(self, epoch: int, step: int) -> None:
        """A step's losses are computed before its update: an update that breaks the weights (a
        rate of 1e308 is infinity in float32) shows only in the next step's, too late for the last
        step of a run, whose NaN weights were checkpointed and saved. Checked before each save."""
        networks = {"G": self.gan.generator, "D": self.gan.discriminator, "G's average": self.gan.sampler}
        for name, network in networks.items():
            if not all(np.isfinite(w.numpy()).all() for w in network.weights if "float" in str(w.dtype)):
                raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, step {step}: {name}'s weights are "
                                       f"no longer finite; last good checkpoint: "
                                       f"{self.checkpoints.latest_checkpoint or 'none'}")

    def _global_step(self, epoch: int, step: int) -> int:
        return epoch * self.steps_per_epoch + step

    def _end_epoch(self, epoch, started, steps_run, progress, task) -> str:
        import tensorflow as tf

        self._check_finite_weights(epoch, self.steps_per_epoch)  # before its samples, scores and checkpoint
        seconds = time.perf_counter() - started
        means = self.epoch_sums.numpy() / self.steps_per_epoch
        row = {"epoch": epoch + 1, **dict(zip(METRICS, means.round(5).tolist())),
               "images_per_s": round(steps_run * self.config.batch_size / seconds, 1),
               "seconds": round(seconds, 2)}
        last = epoch + 1 == self.config.epochs
        quality = {}
        if self.chief:  # samples, scores and logs: once, by the chief
            grid = self.sample_grid()
            images.save_png(grid, self.out / "samples" / f"epoch_{epoch + 1:03d}.png")
            if self.config.eval_every and ((epoch + 1) % self.config.eval_every == 0 or last):
                quality = self.score()
                row.update({k: round(v, 5) if isinstance(v, float) else v for k, v in quality.items()})
            append_metrics(self.out / "metrics.csv", row)
            with self.summary_writer.as_default(step=epoch + 1):
                for key in (*METRICS, "images_per_s", *quality):
                    tf.summary.scalar(key, row[key])
                tf.summary.image("samples", np.asarray(grid)[None, :, :, None], max_outputs=1)
        self.epoch.assign(epoch + 1)
        self.step_in_epoch.assign(0)
        self.epoch_sums.assign(tf.zeros_like(self.epoch_sums))
        if (epoch + 1) % self.config.checkpoint_every == 0 or last:
            self.checkpoints.save(checkpoint_number=self._global_step(epoch + 1, 0))
        shown = METRICS if self.codes else METRICS[:-1]  # code_accuracy is 0 without codes
        summary = (" ".join(f"{k} {row[k]:.3f}" for k in shown)
                   + f"  {row['images_per_s']:,.0f} img/s  {seconds:.1f}s")
        if quality:
            summary += "  " + " ".join(f"{k} {quality[k]:.3f}" for k in QUALITY_SHOWN if k in quality)
        progress.update(task, stats=summary)
        return f"epoch {epoch + 1}/{self.config.epochs}  {summary}"

    def sample_grid(self):
        fakes = self.gan.sampler(self.fixed_latents, training=False)
        return images.grid(images.to_uint8(np.asarray(fakes, dtype=np.float32)), columns=self.grid_columns)

    def score(self) -> dict:
        """The quality metrics of the current sampler (runegen/quality/scorer.py), on fixed latents."""

        if self.scorer is None:
            self.scorer = Scorer.for_dataset(self.dataset, self.config.eval_samples, cache=self.out)
        width = self.config.latent_dim + self.num_classes

        def score(model):
            return self.scorer.score(lambda z: np.asarray(model(z, training=False), np.float32),
                                     width, self.num_classes, self.codes, self.code_weights())

        scores = score(self.gan.sampler)
        if self.config.ema:  # the live generator too: what EMA adds, measured in the same run
            scores.update({f"raw_{k}": v for k, v in score(self.gan.generator).items()
                           if k in RAW_SCORES})
        return scores

    def code_weights(self) -> list[float] | None:
        """How often each latent code is drawn (the learned code prior), or None: uniformly."""
        if self.gan.code_frequency is None:
            return None
        return [round(float(w), 6) for w in self.gan.code_frequency.numpy()]

    def finish(self) -> Path | None:
        """The progress GIF and the inference generator: float32, BN in inference mode (the
        chief's; other workers of a cluster write nothing and return None)."""
        from runegen.training.nets import PRESETS

        if not self.chief:
            shutil.rmtree(self.checkpoints.directory, ignore_errors=True)
            return None
        save_progress_gif(self.out / "samples", self.out / "progress.gif")
        generator = PRESETS[self.config.preset].generator(self.config.latent_dim,
                                                          num_classes=self.num_classes)
        generator.set_weights(self.gan.sampler.get_weights())
        target = self.out / "generator.keras"
        weights = self.code_weights()
        with atomic.atomic_path(target) as tmp:
            generator.save(tmp)
            # The code prior renamed into place last but one: a stop while the generator was saved
            # left the new prior beside the old generator.
            if weights is not None:  # read by the Keras runtime beside config.json, carried by exports
                atomic.write_text(self.out / CODE_WEIGHTS_FILE, json.dumps(weights) + "\n")
        return target

