"""What the process-wide TensorFlow settings cost runegen's default training step, on this CPU.

Each setting runs in its own process (op determinism and oneDNN are process-wide), the default
config's GAN step on the built-in runes through the same tf.data pipeline as training, and the
settings take turns for `--rounds` rounds so that the shared machine's drift hits them alike:

- default: what `runegen train` does (op determinism on, grappler's remapper off, oneDNN on, no
  XLA, `--precision`);
- no-determinism: without `tf.config.experimental.enable_op_determinism()`;
- xla: the step compiled with `jit_compile=True`;
- no-onednn: `TF_ENABLE_ONEDNN_OPTS=0`;
- tutorial-recipe: the default's settings with BCE, the preset's D with Dropout, no latent codes;
- no-self-conditioning: the default without D's code projection (what self-conditioning costs);
- onednn-avx2: `ONEDNN_MAX_CPU_ISA=AVX2`, oneDNN's kernels as on a CPU with AVX2 and no AVX-512
  (the same cores and clock otherwise: an estimate of the AVX2 class's speed, not a measurement);
- bf16: `--precision bf16` whatever `--precision` says (on CPUs with AVX512-BF16 or AMX);
- interop-1: `TF_NUM_INTEROP_THREADS=1`;
- intraop-1: `TF_NUM_INTRAOP_THREADS=1` (one thread per op, independent ops side by side);
- batch-128: batches of 128 instead of 64 (images/s; not the same training);
- codes-24: 24 latent codes instead of the default's 60;
- remapper: grappler's remapper on (`tf.config.optimizer.set_experimental_options`);
- no-code-invariance: without the invariance term's extra pass of D over the real batch;
- no-code-prior: codes drawn uniformly, not by the learned prior.
- no-continuous-codes: without the 4 Gaussian inputs Q reads back.
- d-width-0.5, d-width-0.75: D with half or three quarters of its channels (`--d-width`).
- autotune: tf.data's autotuner on (runegen train turns it off);
- d-kernel-3, d-kernel-4: D's convolutions with 3x3 or 4x4 kernels instead of s1's 5x5 (`--d-kernel`).

    python benchmarks/step_settings.py [--rounds 3] [--steps 150] [--only default onednn-avx2]

Prints images/s per setting and round, then the medians as ratios to the default. A record, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SETTINGS = {
    "default": {},
    "no-determinism": {"determinism": False},
    "xla": {"jit": True},
    "no-onednn": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
    # The tutorial's recipe on the same loop: what SN, the hinge loss and the Q head cost.
    "tutorial-recipe": {"config": {"objective": "bce", "spectral_norm": False, "codes": 0}},
    # D without the self-conditioning projection: what the code embedding costs the step.
    "no-self-conditioning": {"config": {"self_conditioning": False}},
    "onednn-avx2": {"env": {"ONEDNN_MAX_CPU_ISA": "AVX2"}},
    "bf16": {"precision": "bf16"},
    # One thread for running independent ops side by side: on 2 cores TensorFlow's default pool
    # and oneDNN's threads may compete.
    "interop-1": {"env": {"TF_NUM_INTEROP_THREADS": "1"}},
    # The other way round: each op on one thread, independent ops (D's passes, the two tapes'
    # gradients) side by side on the two cores.
    "intraop-1": {"env": {"TF_NUM_INTRAOP_THREADS": "1"}},
    # Twice the default batch: images/s only (a bigger batch means fewer steps per epoch).
    "batch-128": {"config": {"batch_size": 128}},
    # The 2026-11-30 default's 24 codes instead of 60: what the wider Q head and embedding cost.
    "codes-24": {"config": {"codes": 24}},
    # Grappler's remapper (op fusion) back on, as before 2026-12-01 (runegen train turns it off:
    # on the default step it logs "remapper failed" and gives up on that graph anyway).
    "remapper": {"optimizer": {"remapping": True}},
    # The two parts of the later 2026-12-01 default, one at a time.
    "no-code-invariance": {"config": {"code_invariance": 0.0}},
    "no-code-prior": {"config": {"code_prior": False}},
    "no-continuous-codes": {"config": {"continuous_codes": 0}},
    # D at half and three quarters of its channels: its passes are about 40% of an fp32 step.
    "d-width-0.5": {"config": {"d_width": 0.5}},
    "d-width-0.75": {"config": {"d_width": 0.75}},
    # tf.data's autotuner on, as before 2026-12-03 (runegen train turns it off: its thread held
    # epochs to 20.48, 40.96 or 81.92 s; here one pipeline serves every step, so that wait never comes).
    "autotune": {"autotune": True},
    # D's convolutions with 3x3 and 4x4 kernels instead of s1's 5x5.
    "d-kernel-3": {"config": {"d_kernel": 3}},
    "d-kernel-4": {"config": {"d_kernel": 4}},
}

WORKER = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
spec = json.loads(sys.argv[1])
from runegen.core.quiet import import_tensorflow
tf = import_tensorflow()
import keras
from runegen.data import load_dataset
from runegen.training.gan import DCGAN
from runegen.training.nets import PRESETS
from runegen.training.tf_settings import configure_tensorflow, without_autotune
from runegen.training.config import PRECISIONS, TrainConfig, resolve_precision

config = TrainConfig(**spec.get("config", {}))
dtype = PRECISIONS[resolve_precision(spec["precision"])]
keras.utils.set_random_seed(0)
configure_tensorflow(tf, spec.get("determinism", True))  # as runegen train sets them
if spec.get("optimizer"):
    tf.config.optimizer.set_experimental_options(spec["optimizer"])
dataset = load_dataset("runes", config.samples_per_class, 0)
generator, discriminator = PRESETS["s1"].pair_for(config, 0, dtype)
ema = PRESETS["s1"].generator(config.latent_dim, dtype=dtype)
# As a run of config.epochs builds it (runegen/training/run.py): the rate schedule needs the length.
gan = DCGAN(generator, discriminator, config, 0, ema, total_steps=config.epochs * (len(dataset) // config.batch_size))
if spec.get("jit"):
    gan.train_step = tf.function(gan._train_step, jit_compile=True)
batches = (tf.data.Dataset.from_tensor_slices((dataset.images, dataset.labels.astype("int32"))).cache()
           .shuffle(len(dataset), seed=0).repeat().batch(config.batch_size, drop_remainder=True)
           .prefetch(tf.data.AUTOTUNE if spec.get("autotune") else 2))
if not spec.get("autotune"):
    batches = without_autotune(batches)  # as runegen train reads its batches
iterator = iter(batches)
for _ in range(5):  # tracing and warm-up
    float(gan.train_step(*next(iterator))["g_loss"])
print("timed steps follow", flush=True)  # where benchmarks/step_profile.py starts counting
started = time.perf_counter()
for _ in range(spec["steps"]):
    float(gan.train_step(*next(iterator))["g_loss"])  # the loop reads every step's losses too
print(json.dumps(spec["steps"] * config.batch_size / (time.perf_counter() - started)))
"""


def run_worker(spec: dict, env: dict) -> str:
    """WORKER's stdout for `spec` in a fresh process; where it fails, its own last line of stderr as
    this script's one-line error (it was a traceback quoting WORKER, without the worker's reason)."""
    result = subprocess.run([sys.executable, "-c", WORKER, json.dumps(spec)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        sys.exit(f"{Path(sys.argv[0]).name}: the worker failed ({spec}): {last}")
    return result.stdout


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected a number >= 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--steps", type=positive_int, default=150)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="as runegen train --precision")
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), help="these settings (default is always run)")
    args = parser.parse_args()
    chosen = {name: SETTINGS[name] for name in SETTINGS if not args.only or name == "default" or name in args.only}
    rates = {name: [] for name in chosen}
    for round_index in range(args.rounds):
        for name, setting in chosen.items():
            spec = {"steps": args.steps, "precision": args.precision} | {k: v for k, v in setting.items() if k != "env"}
            env = {**os.environ, **setting.get("env", {})}
            rates[name].append(float(run_worker(spec, env).strip().splitlines()[-1]))
            print(f"round {round_index + 1}  {name:<15} {rates[name][-1]:7.1f} img/s", flush=True)
    baseline = sorted(rates["default"])[len(rates["default"]) // 2]
    for name, values in rates.items():
        median = sorted(values)[len(values) // 2]
        print(f"{name:<15} median {median:7.1f} img/s  {median / baseline:5.2f}x default", flush=True)


if __name__ == "__main__":
    main()
