"""The training configuration: one object from the command line to the run and the GAN step.

`TrainConfig` holds every setting of a run (the `train` command has one option per field, of the
same name); `config.json` in a run folder is this object, with precision and determinism resolved
for the machine the run started on.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from runegen.core import atomic
from runegen.core.errors import DeviceError, RunStateError, reason
from runegen.core.quiet import import_tensorflow

# name -> Keras dtype policy; fp16 also scales the losses (LossScaleOptimizer, runegen/training/gan.py)
PRECISIONS = {"fp32": None, "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
LATENT_DIM = 100  # the seed's generator input: the default networks' (runegen/training/nets.py)
# The choices of the other named settings (the train command's options are made from them).
PRESET_NAMES = ("s1", "s2")  # runegen/training/nets.py's PRESETS, which imports TensorFlow
OBJECTIVES = ("hinge", "bce")  # runegen/training/gan.py
UPDATES = ("simultaneous", "alternating")  # runegen/training/gan.py
BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}
# oneDNN's ISA limits (ONEDNN_MAX_CPU_ISA) below its bf16 kernels: under them a bf16 step aborted
# the process ("could not create a primitive descriptor"), as `auto` read bf16 off the CPU's flags.
ONEDNN_BELOW_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}

# What a config.json that predates a setting means by its absence: off, or what the step did before
# the setting existed (the tutorial's BCE, its Dropout D, Keras' Adam beta_2).
LEGACY = {"objective": "bce", "spectral_norm": False, "beta_2": 0.999, "codes": 0, "self_conditioning": False,
          "code_balance": 0.0, "code_invariance": 0.0, "code_prior": False, "continuous_codes": 0, "lr_decay": 0.0}


@dataclass
class TrainConfig:
    data: str = "runes"
    preset: str = "s1"
    epochs: int = 15  # by then the default meets its FD, precision and recognisability goals (docs/ablation.md)
    batch_size: int = 64
    # The objective and D of runegen/training/gan.py: hinge loss, spectrally normalised D, 60 InfoGAN
    # latent codes (2.5 for each kind of rune), a self-conditioned D whose Q head files real glyphs
    # by shape rather than position, codes drawn as often as Q reads them, and 4 Gaussian inputs Q
    # must read back (so that G spends its noise on visible variety); chosen by the ablation in
    # docs/ablation.md, like the optimiser settings below.
    objective: str = "hinge"
    spectral_norm: bool = True
    minibatch_std: bool = False
    d_width: float = 1.0  # D's channels, times the preset's (D's shape is a preset detail; G's is the seed's)
    # D's convolution kernels (0: the preset's, s1 5x5, s2 3x3); s2's last, "valid", then shrinks (2x2 at 4 or 5)
    d_kernel: int = 0
    codes: int = 60  # one-hot latent codes in G's input (unconditional runs only); 0 = none
    continuous_codes: int = 4  # Gaussian latent columns Q must also read back (unconditional only)
    info_weight: float = 1.0
    continuous_weight: float = 1.0  # the continuous codes' regression term, relative to the one-hot's
    # D judges each image against its code (fakes) or its Q head's reading of it (real images).
    self_conditioning: bool = True
    code_balance: float = 1.0  # weight of D's term that spreads Q's readings of real images evenly
    code_invariance: float = 0.1  # weight of D's term that keeps Q's reading of a real glyph when it shifts
    code_prior: bool = True  # draw codes as often as Q reads them in real glyphs (runegen/training/gan.py)
    # The bounded mode-seeking term of runegen/training/gan.py: its weight (0 = off), and the image
    # distance per unit of noise distance it asks of same-code pairs (real runes of one class: 0.16).
    mode_seeking: float = 0.0
    mode_seeking_target: float = 0.16
    lr_g: float = 4e-4
    lr_d: float = 8e-4
    lr_decay: float = 0.25  # share of the run, at its end, over which both rates fall linearly to 0
    beta_1: float = 0.0
    beta_2: float = 0.9
    seed: int = 0
    latent_dim: int = LATENT_DIM
    update: str = "simultaneous"
    precision: str = "auto"  # resolved to fp32, bf16 or fp16 before the run starts
    deterministic: bool | None = None  # op determinism; None: on without a GPU (resolved at start)
    jit: bool = False  # the step compiled with XLA
    checkpoint_every: int = 5
    samples_per_class: int = 400  # built-in runes only
    conditional: bool = False
    # The stabilisers of runegen/training/gan.py.
    ema: float = 0.999
    diffaugment: bool = False
    label_smoothing: float = 0.0
    r1: float = 0.0  # weight (gamma) of D's R1 gradient penalty at real images; 0 = off
    r1_every: int = 16  # D steps between two R1 penalties (lazy regularisation)
    eval_every: int = 10  # epochs between quality evaluations (0: never); the last epoch always
    eval_samples: int = 1000
    devices: str = "auto"  # tf.distribute: auto, or a device list (runegen/training/distribute.py)

    @property
    def latent_codes(self) -> int:
        """Latent codes actually used: none for a class-conditional run (the class takes their place)."""
        return 0 if self.conditional else self.codes

    @property
    def latent_continuous_codes(self) -> int:
        """Continuous codes actually used: none for a class-conditional run, like `latent_codes`."""
        return 0 if self.conditional else self.continuous_codes


def resolve_precision(precision: str) -> str:
    """"auto": on GPUs, bf16 where every GPU has bfloat16 tensor cores (compute capability 8.0 and
    up), fp16 with loss scaling on older ones with fp16 tensor cores (7.x), else fp32; on CPUs,
    bf16 where they compute in bfloat16 natively (AVX512-BF16, AMX: ~1.5x faster with runes as
    good as fp32's, see README) and oneDNN is not held below its bf16 kernels
    (ONEDNN_MAX_CPU_ISA=AVX2, say), else fp32."""
    if precision != "auto":
        return precision
    tf = import_tensorflow()
    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability")
                    for gpu in tf.config.list_physical_devices("GPU")]
    return auto_precision(cpu_flags() - (BF16_CPU_FLAGS if _onednn_held_below_bf16() else set()), capabilities)


def check_precision_runs_here(precision: str, devices: list[str]) -> None:
    """Refuse bf16 (asked for, or a bf16 run resumed) where it would run on the CPU (no GPU, or a
    CPU among `devices`) with oneDNN held below its bf16 kernels: its first step aborted the
    process ("could not create a primitive descriptor"), which no --resume could get past."""
    onednn_off = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false")
    if precision != "bf16" or not _onednn_held_below_bf16() or onednn_off:
        return
    a_cpu = any("cpu" in device.lower() for device in devices)  # a replica of its own on the CPU
    if not a_cpu and import_tensorflow().config.list_physical_devices("GPU"):
        return
    raise DeviceError(f"bf16 on the CPU needs oneDNN's bf16 kernels, which ONEDNN_MAX_CPU_ISA="
                      f"{os.environ['ONEDNN_MAX_CPU_ISA'].strip()} holds off: unset it (a new run can take "
                      "--precision fp32)")


def _onednn_held_below_bf16() -> bool:
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in ONEDNN_BELOW_BF16


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        return {flag for line in open("/proc/cpuinfo") if line.startswith("flags")
                for flag in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def auto_precision(cpu_flags: set[str], gpu_capabilities: list[tuple[int, int] | None]) -> str:
    if gpu_capabilities:
        lowest = min((c or (0, 0)) for c in gpu_capabilities)
        return "bf16" if lowest >= (8, 0) else "fp16" if lowest >= (7, 0) else "fp32"
    return "bf16" if BF16_CPU_FLAGS & cpu_flags else "fp32"


def resolve_deterministic(deterministic: bool | None) -> bool:
    """None: on where no GPU is visible. On this project's CPUs it costs ~1% of the step
    (benchmarks/step_settings.py); on GPUs TensorFlow's deterministic kernels are slower and some
    ops refuse to run, so there it is an opt-in (--deterministic)."""
    if deterministic is not None:
        return deterministic
    return not import_tensorflow().config.list_physical_devices("GPU")


def save_config(config: TrainConfig, out: Path) -> None:
    atomic.write_text(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")


def load_config(out: Path) -> TrainConfig:
    path = out / "config.json"
    try:
        # Runs from before self-conditioning and code balance existed trained without them.
        return TrainConfig(**{**LEGACY, **json.loads(path.read_text())})
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise RunStateError(f"{out} holds no run (no config.json)") from None
    except (ValueError, TypeError) as error:
        raise RunStateError(f"{path} is not a runegen config ({reason(error)})") from None
