"""The GAN algorithm in one place: the objective, the update, the stabilisers, the latent codes.

Two objectives (`objective`, runegen/training/objectives.py): "bce", the DCGAN tutorial's
cross-entropy, and "hinge", used with a spectrally normalised D (runegen/training/spectral.py).

Two update schemes, as the seeds describe them:
- simultaneous (seed 000 = TensorFlow's DCGAN tutorial): one generator pass feeds both losses,
  two tapes, both networks step together. Cheaper: one forward pass of G per step.
- alternating (seed 001, section 1-4): a discriminator step with G fixed, then fresh fakes for a
  generator step with D fixed.

Latent codes (`codes` > 0, InfoGAN), with self-conditioning, code invariance, the code prior,
continuous codes and mode seeking: what each is for is told in runegen/training/code_losses.py,
beside their loss terms; the step here draws the codes and adds the terms.

Stabilisers, each a config switch (their measured effect is in docs/ablation.md):
- `ema`: an exponential moving average of G's weights, the generator used for samples and saving
  (Karras et al. 2018); 0 turns it off.
- `diffaugment`: the same random translation and cutout on real and fake images before D, with
  gradients flowing through it into G (Zhao et al. 2020). No flips: a mirrored rune is another rune
  or none.
- `label_smoothing`: D's target for real images is 1 - s (one-sided, Salimans et al. 2016; "bce").
- `r1`: the R1 gradient penalty on D at real images (Mescheder et al. 2018), applied lazily every
  `r1_every` D steps at `r1_every` times the weight (StyleGAN2's lazy regularisation), so the
  second-order pass it needs is paid on those steps only.

Class-conditional (`num_classes` > 0): G's input is the latent joined to the class one-hot, so the
first Dense layer's rows for the one-hot are a learned class embedding; D is a projection
discriminator (Miyato & Koyama 2018). Fake labels are drawn uniformly.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from runegen.training.augment import diff_augment, translate
from runegen.training.code_losses import balance_loss, info_loss, invariance_loss, mode_seeking_loss
from runegen.training.distribute import check_replica_settings, replica_slice
from runegen.training.objectives import discriminator_loss, generator_loss, r1_penalty
from runegen.training.optimizers import make_optimizer

PRIOR_MOMENTUM = 0.99  # code_frequency's running average: about the last 100 steps
INVARIANCE_SHIFT = 2  # pixels each way; a real rune's centre varies by about 1 pixel (std) in the data


class DCGAN(tf.Module):
    """The training step of a generator/discriminator pair, driven by a TrainConfig (runegen/training/run.py).

    `codes` is the number of categorical latent codes, `continuous` of continuous ones, both read
    from the config (always 0 for a conditional run)."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, config, num_classes: int = 0,
                 ema_generator: keras.Model | None = None, strategy: tf.distribute.Strategy | None = None,
                 total_steps: int | None = None, ground: float = -1.0):
        super().__init__(name="dcgan")
        self.ground = ground  # the data's background, -1 (black) or 1 (white): what a shift uncovers
        self.generator = generator
        self.discriminator = discriminator
        self.config = config
        self.num_classes = num_classes
        self.codes = codes = config.latent_codes
        self.continuous = config.latent_continuous_codes
        self.noise_width = config.latent_dim - codes  # the Gaussian columns of G's input, before the one-hot
        # A discriminator built self-conditioned (nets.info_discriminator) takes [image, code].
        self.self_conditioned = bool(codes) and not num_classes and len(discriminator.inputs) == 2
        # The nets are built in the strategy's scope by the caller; so are the optimizers, here.
        # See runegen/training/distribute.py for how a step with several replicas equals one device's.
        self.strategy = strategy or tf.distribute.get_strategy()
        check_replica_settings(config, self.strategy.num_replicas_in_sync)
        with self.strategy.scope():
            # How often Q reads each code in real glyphs (running average); drawn from with code_prior.
            self.code_frequency = (tf.Variable(tf.fill([codes], 1.0 / codes), trainable=False,
                                               name="code_frequency") if codes and config.code_prior else None)
            self.g_optimizer = make_optimizer(config, config.lr_g, total_steps)
            self.d_optimizer = make_optimizer(config, config.lr_d, total_steps)
            # Built now so a checkpoint can restore their slots before the first step.
            self.g_optimizer.build(generator.trainable_variables)
            self.d_optimizer.build(discriminator.trainable_variables)
        # A stateful generator (not tf.random.normal) so its state is checkpointed: a resumed run
        # draws exactly the noise (and augmentations, and fake labels) the uninterrupted run would.
        # Made outside the strategy's scope: one stream, drawn once per step for the global batch.
        self.noise = tf.random.Generator.from_seed(config.seed)
        self.ema_generator = ema_generator
        if config.ema:
            if ema_generator is None:
                raise ValueError("config.ema needs an ema_generator of the same architecture")
            ema_generator.set_weights(generator.get_weights())
        steps = {"simultaneous": self._simultaneous_step, "alternating": self._alternating_step}
        self._step = steps[config.update]
        # No autograph: the step branches on the config only, never on a tensor, so the graph is
        # the same without it, and converting the step's source took seconds of every start.
        self.train_step = tf.function(self._train_step, jit_compile=config.jit or None, autograph=False)

    @property
    def sampler(self) -> keras.Model:
        """The generator to draw samples from: the weight average when EMA is on."""
        return self.ema_generator if self.config.ema else self.generator

    def generator_inputs(self, batch_size):
        """(inputs, labels): Gaussian noise, then the one-hot of uniformly drawn labels: the class
        (conditional, joined after latent_dim) or the latent code (its last `codes` columns)."""
        one_hot = self.num_classes or self.codes
        z = self.noise.normal([batch_size, self.noise_width])
        if not one_hot:
            return z, None
        if self.config.mode_seeking:  # pairs (2k, 2k + 1) share a label, so only their noise differs
            labels = tf.repeat(self._draw_labels(batch_size // 2, one_hot), 2)
        else:
            labels = self._draw_labels(batch_size, one_hot)
        return tf.concat([z, tf.one_hot(labels, one_hot)], axis=1), labels

    def _draw_labels(self, n, one_hot):
        """Uniformly, or codes in proportion to code_frequency (inverse CDF of one uniform draw each)."""
        if self.code_frequency is None or self.num_classes:
            return self.noise.uniform([n], 0, one_hot, dtype=tf.int32)
        cumulative = tf.cumsum(tf.convert_to_tensor(self.code_frequency))
        drawn = tf.searchsorted(cumulative / cumulative[-1], self.noise.uniform([n]), side="right")
        return tf.minimum(drawn, one_hot - 1)

    def _discriminate(self, images, labels, real: bool = False):
        """(logits, code logits or None) of D on `images`; `labels` are classes when conditional,
        the fakes' codes when D is self-conditioned (real images: Q's reading, asked by -1)."""
        if self.config.diffaugment:
            images = diff_augment(images, self.noise)
        if self.num_classes:
            return self.discriminator([images, labels], training=True), None
        if self.self_conditioned:
            codes = tf.fill([tf.shape(images)[0]], -1) if real else labels
            logits, q = self.discriminator([images, codes], training=True)
            return logits, q
        if self.codes or self.continuous:
            logits, q = self.discriminator(images, training=True)
            return logits, q
        return self.discriminator(images, training=True), None

    def _generator_loss(self, fake_logits):
        """Per example (the step averages over the global batch)."""
        return generator_loss(self.config.objective, fake_logits)

    def _discriminator_loss(self, real_logits, fake_logits):
        return discriminator_loss(self.config.objective, real_logits, fake_logits, self.config.label_smoothing)

    def _r1_loss(self, real_images, real_labels):
        """Per example, weighted (0 when off): objectives.r1_penalty for D, on every `r1_every`-th
        D step only (tf.cond on the step counter, which checkpoints keep: a resumed run pays it on
        the same steps), `r1_every` times as strong."""
        if not self.config.r1:
            return 0.0
        every = self.config.r1_every

        def penalty():
            def logits_of(images):
                return self._discriminate(images, real_labels, real=True)[0]
            return 0.5 * self.config.r1 * every * r1_penalty(logits_of, real_images)

        return tf.cond(self.d_optimizer.iterations % every == 0, penalty,
                       lambda: tf.zeros([tf.shape(real_images)[0]]))

    def _info_loss(self, q, inputs, codes):
        """Per example, weighted (0 without a Q head): code_losses.info_loss."""
        if q is None:
            return tf.zeros([tf.shape(inputs)[0]])
        return self.config.info_weight * info_loss(q, inputs, codes, self.codes, self.continuous,
                                                   self.noise_width, self.config.continuous_weight)

    def _balance_loss(self, real_code_logits):
        """Per example, weighted (0 when off): code_losses.balance_loss, for D."""
        if not (self.config.code_balance and self.codes and real_code_logits is not None):
            return 0.0
        return self.config.code_balance * balance_loss(real_code_logits, self.codes)

    @property
    def _invariant(self) -> bool:
        return bool(self.config.code_invariance and self.codes and not self.num_classes)

    def _invariance_loss(self, real_images, real_code_logits, real_shifts):
        """Per example, weighted (0 when off): code_losses.invariance_loss on the real images moved
        by `real_shifts`, for D (one more pass of D over the real batch)."""
        if not (self._invariant and real_code_logits is not None):
            return 0.0
        shifted = translate(real_images, real_shifts, self.ground)
        _, shifted_code_logits = self._discriminate(shifted, None, real=True)
        return self.config.code_invariance * invariance_loss(real_code_logits, shifted_code_logits, self.codes)

    def _mode_seeking_loss(self, inputs, fake_images):
        """Per example, weighted (0 when off): code_losses.mode_seeking_loss, for G."""
        if not self.config.mode_seeking:
            return 0.0
        return self.config.mode_seeking * mode_seeking_loss(inputs, fake_images, self.noise_width,
                                                            self.config.mode_seeking_target)

    @staticmethod
    def _scaled(optimizer, loss):
        """The loss to differentiate, inside the tape: scaled up under fp16 loss scaling (the
        LossScaleOptimizer's apply_gradients scales the gradients back, and skips inf/NaN steps)."""
        return optimizer.scale_loss(loss) if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else loss

    @staticmethod
    def _apply(optimizer, tape, loss, model):
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))

    def _train_step(self, real_images, real_labels):
        """One step on a global batch: the random draws for all of it, then each replica's share
        (`strategy.run`; with one device, a plain call), then EMA in cross-replica context."""
        batch = tf.shape(real_images)[0]
        draws = [self.generator_inputs(batch) for _ in range(2 if self.config.update == "alternating" else 1)]
        draws = [(inputs, batch_labels if batch_labels is not None else tf.zeros([batch], tf.int32))
                 for inputs, batch_labels in draws]
        # Where each real image moves for the invariance term: (down, right) up to INVARIANCE_SHIFT.
        real_shifts = (tf.stack([self.noise.uniform([batch], -INVARIANCE_SHIFT, INVARIANCE_SHIFT + 1, dtype=tf.int32)
                                 for _ in range(2)], axis=1) if self._invariant else tf.zeros([batch, 2], tf.int32))
        per_replica = self.strategy.run(self._replica_step, args=(
            real_images, tf.cast(real_labels, tf.int32), draws, real_shifts, batch))
        report = {key: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                  for key, value in per_replica.items()}
        if self.code_frequency is not None:
            read = report.pop("real_code_counts")
            self.code_frequency.assign(PRIOR_MOMENTUM * self.code_frequency
                                       + (1.0 - PRIOR_MOMENTUM) * read / tf.cast(batch, tf.float32))
        if self.config.ema:
            self._update_ema()
        return report

    def _replica_step(self, real_images, real_labels, draws, real_shifts, batch):
        def mine(tensor):
            return replica_slice(tensor, batch)

        def mean(per_example):  # this replica's share of the global batch's mean
            return tf.nn.compute_average_loss(tf.cast(per_example, tf.float32), global_batch_size=batch)

        return self._step(mine(real_images), mine(real_labels), [(mine(z), mine(y)) for z, y in draws],
                          mine(real_shifts), mean)

    def _update_ema(self):
        # The decay warms up with the step count (as tf.train.ExponentialMovingAverage's
        # num_updates does), so the average does not drag the random initialisation along.
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema, (1.0 + step) / (10.0 + step))
        for average, weight in zip(self.ema_generator.trainable_variables, self.generator.trainable_variables):
            average.assign(decay * average + (1.0 - decay) * weight)
        for average, weight in zip(self.ema_generator.non_trainable_variables,
                                   self.generator.non_trainable_variables):
            average.assign(weight)  # BatchNorm's moving statistics follow the live generator

    def _simultaneous_step(self, real_images, real_labels, draws, real_shifts, mean):
        [(inputs, fake_labels)] = draws
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_images = self.generator(inputs, training=True)
            real_logits, real_code_logits = self._discriminate(real_images, real_labels, real=True)
            fake_logits, code_logits = self._discriminate(fake_images, fake_labels)
            info_loss = self._info_loss(code_logits, inputs, fake_labels)
            g_loss = mean(self._generator_loss(fake_logits) + info_loss
                          + self._mode_seeking_loss(inputs, fake_images))
            d_loss = mean(self._discriminator_loss(real_logits, fake_logits) + info_loss
                          + self._balance_loss(real_code_logits) + self._r1_loss(real_images, real_labels)
                          + self._invariance_loss(real_images, real_code_logits, real_shifts))
            g_scaled, d_scaled = self._scaled(self.g_optimizer, g_loss), self._scaled(self.d_optimizer, d_loss)
        self._apply(self.g_optimizer, g_tape, g_scaled, self.generator)
        self._apply(self.d_optimizer, d_tape, d_scaled, self.discriminator)
        return self._report(mean, g_loss, d_loss, real_logits, fake_logits, code_logits, fake_labels,
                            real_code_logits)

    def _alternating_step(self, real_images, real_labels, draws, real_shifts, mean):
        (inputs, fake_labels), (fresh_inputs, fresh_labels) = draws
        fake_images = self.generator(inputs, training=True)
        with tf.GradientTape() as d_tape:
            real_logits, real_code_logits = self._discriminate(real_images, real_labels, real=True)
            fake_logits, code_logits = self._discriminate(fake_images, fake_labels)
            d_loss = mean(self._discriminator_loss(real_logits, fake_logits)
                          + self._balance_loss(real_code_logits) + self._r1_loss(real_images, real_labels)
                          + self._invariance_loss(real_images, real_code_logits, real_shifts)
                          + self._info_loss(code_logits, inputs, fake_labels))
            d_scaled = self._scaled(self.d_optimizer, d_loss)
        self._apply(self.d_optimizer, d_tape, d_scaled, self.discriminator)
        with tf.GradientTape() as g_tape:
            fresh_images = self.generator(fresh_inputs, training=True)
            fresh_logits, fresh_code_logits = self._discriminate(fresh_images, fresh_labels)
            g_loss = mean(self._generator_loss(fresh_logits)
                          + self._info_loss(fresh_code_logits, fresh_inputs, fresh_labels)
                          + self._mode_seeking_loss(fresh_inputs, fresh_images))
            g_scaled = self._scaled(self.g_optimizer, g_loss)
        self._apply(self.g_optimizer, g_tape, g_scaled, self.generator)
        return self._report(mean, g_loss, d_loss, real_logits, fake_logits, code_logits, fake_labels,
                            real_code_logits)

    def _report(self, mean, g_loss, d_loss, real_logits, fake_logits, code_logits, codes, real_code_logits):
        """Losses, D(x) and D(G(z)) (sigmoid of the logits: the discriminator's mean belief that
        each batch is real), and how often Q reads the fakes' code back (0 without codes); each
        this replica's share of the global mean, summed over replicas by the step. With the code
        prior also (taken out by the step) how many of this replica's real glyphs Q reads as each
        code."""
        if code_logits is None or not self.codes:
            code_accuracy = tf.constant(0.0)
        else:
            hits = tf.equal(tf.argmax(code_logits[:, :self.codes], axis=1, output_type=tf.int32), codes)
            code_accuracy = mean(hits)
        report = {"g_loss": g_loss, "d_loss": d_loss,
                  "d_real": mean(tf.sigmoid(real_logits)),
                  "d_fake": mean(tf.sigmoid(fake_logits)),
                  "code_accuracy": code_accuracy}
        if self.code_frequency is not None:
            read = tf.argmax(real_code_logits[:, :self.codes], axis=1, output_type=tf.int32)
            report["real_code_counts"] = tf.reduce_sum(tf.one_hot(read, self.codes), axis=0)
        return report
