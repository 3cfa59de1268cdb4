"""The ablation: one `runegen train` per setting, scored with the shipped classifier.

Every run is s1 on the built-in runes (seed 0) with the tutorial's recipe (BASELINE, spelled out
below) and one setting changed, or the settings that make runegen's default combined; it evaluates
every `--eval-every` epochs. All runs of one call train the same number of epochs, and each records
its wall time, so they compare at (nearly) equal time. EMA does not change training, only
which weights are sampled, so each run with `--ema` also scores its live generator (the `raw_`
columns): the EMA row and its "without" come from the same run.

    python benchmarks/ablation.py --out runs/ablation [--only NAME ...] [--epochs 30]
    python benchmarks/ablation.py --out runs/ablation-small --samples-per-class 100 --epochs 120 \
        --eval-every 40 --only baseline+ema diffaugment    # small data, the same number of steps

Writes <out>/<name>/ (a normal run folder each) and <out>/ablation.json: the last evaluated epoch's
metrics per setting. A record, not a test: nothing asserts it. docs/ablation.md quotes one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from runegen.core import atomic

# Every run starts from the tutorial's setup, spelled out so a change of runegen's defaults does not
# move the baseline; then the setting's own arguments (the last value of an option wins).
BASELINE = ["--objective", "bce", "--no-spectral-norm", "--codes", "0", "--ema", "0", "--no-diffaugment",
            "--label-smoothing", "0", "--lr-g", "2e-4", "--lr-d", "2e-4", "--beta-1", "0.5",
            "--beta-2", "0.999", "--lr-decay", "0", "--no-self-conditioning", "--code-balance", "0",
            "--mode-seeking", "0", "--code-invariance", "0", "--no-code-prior", "--continuous-codes", "0",
            "--continuous-weight", "1", "--no-minibatch-std"]
SN_HINGE = ["--objective", "hinge", "--spectral-norm", "--beta-1", "0", "--beta-2", "0.9", "--lr-d", "4e-4"]
CODES = ["--codes", "24"]
# The default of 2026-11-25: SN-GAN's D and loss with 24 InfoGAN codes, and EMA.
CODES_DEFAULT = ["--ema", "0.999", *SN_HINGE, *CODES]
SELF_CONDITIONING = ["--self-conditioning"]  # D's projection on the code (Q's reading for real images)
# The default of 2026-11-30: that, with a self-conditioned D, balanced codes and doubled rates.
NOV30 = [*CODES_DEFAULT, *SELF_CONDITIONING, "--code-balance", "1", "--lr-g", "4e-4", "--lr-d", "8e-4"]
# The first default of 2026-12-01: that with 60 codes, 2.5 for each kind of rune.
DEC01 = [*NOV30, "--codes", "60"]
# The later default of 2026-12-01: Q files real runes by shape (a light invariance term), and codes
# are drawn as often as Q reads them.
DEC01_LATER = [*DEC01, "--code-invariance", "0.1", "--code-prior"]
# Today's default (a third session on 2026-12-01): that, with 4 continuous codes and both rates
# falling to 0 over the last quarter.
DEFAULT = [*DEC01_LATER, "--continuous-codes", "4", "--lr-decay", "0.25"]
# name -> extra `runegen train` arguments
SETTINGS = {
    "baseline+ema": ["--ema", "0.999"],  # the tutorial's setup; EMA scored beside the raw weights
    "sn_hinge": ["--ema", "0.999", *SN_HINGE],  # SN-GAN's D and loss, Adam (0, 0.9), D at 2x G's rate
    "codes": ["--ema", "0.999", *CODES],  # InfoGAN codes on the tutorial's BCE and D
    "sn_hinge+codes": CODES_DEFAULT,  # both: the default of 2026-11-25
    "sn_hinge+codes+lr_decay": [*CODES_DEFAULT, "--lr-decay", "0.5"],  # rates to 0 over the 2nd half
    "sn_hinge+codes48": ["--ema", "0.999", *SN_HINGE, "--codes", "48"],  # twice as many codes as runes
    # same-code pairs must differ (bounded mode seeking): at real runes' variety, and a little below
    "sn_hinge+codes+mode_seeking": [*CODES_DEFAULT, "--mode-seeking", "1"],
    "sn_hinge+codes+mode_seeking_0.12": [*CODES_DEFAULT, "--mode-seeking", "1", "--mode-seeking-target", "0.12"],
    "sn_hinge+codes48+mode_seeking": ["--ema", "0.999", *SN_HINGE, "--codes", "48", "--mode-seeking", "1"],
    "sn_hinge+codes+self_conditioning": [*CODES_DEFAULT, *SELF_CONDITIONING],
    "sn_hinge+codes+self_conditioning+balance": [*CODES_DEFAULT, *SELF_CONDITIONING, "--code-balance", "1"],
    "sn_hinge+codes+self_conditioning+balance3": [*CODES_DEFAULT, *SELF_CONDITIONING, "--code-balance", "3"],
    "2026-11-30": NOV30,  # the above with both learning rates doubled
    "2026-11-30+balance3": [*NOV30, "--code-balance", "3"],
    "2026-11-30+balance3+lr3": [*NOV30, "--code-balance", "3", "--lr-g", "6e-4",
                                "--lr-d", "1.2e-3"],  # three times the 2026-11-25 rates
    # On top of the 2026-11-30 default, one change each (2026-12-01):
    "2026-11-30+lr_decay": [*NOV30, "--lr-decay", "0.25"],  # both rates to 0 over the last quarter
    "2026-11-30+info2": [*NOV30, "--info-weight", "2"],  # Q's term twice as heavy
    "2026-11-30+codes48": [*NOV30, "--codes", "48"],  # two codes for each kind of rune
    "2026-11-30+codes48+lr_decay": [*NOV30, "--codes", "48", "--lr-decay", "0.25"],
    "2026-12-01": DEC01,  # 2026-11-30 with 60 codes
    "2026-12-01+codes72": [*DEC01, "--codes", "72"],  # three codes for each kind of rune
    "2026-12-01+codes72+lr_decay": [*DEC01, "--codes", "72", "--lr-decay", "0.25"],
    # On top of the first 2026-12-01 default, one change each (a later session the same day):
    "2026-12-01+lr_decay": [*DEC01, "--lr-decay", "0.25"],
    "2026-12-01+mode_seeking": [*DEC01, "--mode-seeking", "1"],  # same-code pairs must differ
    "2026-12-01+codes66+lr_decay": [*DEC01, "--codes", "66", "--lr-decay", "0.25"],
    # Q must read a real rune moved by up to 2 pixels as the unmoved one (weights 1, 0.3, 0.1)
    "2026-12-01+invariance": [*DEC01, "--code-invariance", "1"],
    "2026-12-01+invariance0.3": [*DEC01, "--code-invariance", "0.3"],
    "2026-12-01+invariance0.1": [*DEC01, "--code-invariance", "0.1"],
    "2026-12-01+code_prior": [*DEC01, "--code-prior"],  # codes drawn as often as Q reads them
    "2026-12-01-later": DEC01_LATER,  # both of the last two
    "2026-12-01-later+lr_decay": [*DEC01_LATER, "--lr-decay", "0.25"],
    # For recall (2026-12-01, a third session), one change each:
    "2026-12-01-later+info0.3": [*DEC01_LATER, "--info-weight", "0.3"],  # Q's pull to the code's centre lighter
    "2026-12-01-later+ema0.995": [*DEC01_LATER, "--ema", "0.995"],  # a shorter weight average
    "2026-12-01-later+invariance0.05": [*DEC01_LATER, "--code-invariance", "0.05"],
    # Gaussian inputs Q must read back, so that G cannot ignore the noise part of its input
    "2026-12-01-later+continuous4": [*DEC01_LATER, "--continuous-codes", "4"],
    "2026-12-01-later+continuous8": [*DEC01_LATER, "--continuous-codes", "8"],
    "default": DEFAULT,  # continuous4 and lr_decay together
    "default+invariance0.05": [*DEFAULT, "--code-invariance", "0.05"],
    "default+ema0.99": [*DEFAULT, "--ema", "0.99"],
    "default+lr_decay0.5": [*DEFAULT, "--lr-decay", "0.5"],  # the rates fall over the second half
    "default+invariance0.075": [*DEFAULT, "--code-invariance", "0.075"],
    "default+codes48": [*DEFAULT, "--codes", "48"],  # 30 of 60 codes end empty: fewer, each wider
    "default+balance0.5": [*DEFAULT, "--code-balance", "0.5"],  # Q's clusters held less even
    "default+codes48+invariance0.05": [*DEFAULT, "--codes", "48", "--code-invariance", "0.05"],
    # For recall (2026-12-01, a fourth session): Q reads the continuous codes back more strictly
    # (its regression weighed 2x or 4x), Q's pull as a whole heavier, or 6 continuous codes.
    "default+continuous_weight2": [*DEFAULT, "--continuous-weight", "2"],
    "default+continuous_weight4": [*DEFAULT, "--continuous-weight", "4"],
    "default+info1.5": [*DEFAULT, "--info-weight", "1.5"],
    "default+continuous6": [*DEFAULT, "--continuous-codes", "6"],
    "default+minibatch_std": [*DEFAULT, "--minibatch-std"],  # D sees each batch's spread
    "default+continuous6+minibatch_std": [*DEFAULT, "--continuous-codes", "6", "--minibatch-std"],
    # Minibatch std with a light mode-seeking term (same-code pairs must differ) or with DiffAugment
    # (D sees shifted, cut-out glyphs): can either buy recall without losing what minibatch std gave?
    "default+minibatch_std+mode_seeking0.3": [*DEFAULT, "--minibatch-std", "--mode-seeking", "0.3"],
    "default+minibatch_std+diffaugment": [*DEFAULT, "--minibatch-std", "--diffaugment"],
    # Batch size against steps: half the batch (twice the steps of the same epochs), or twice the
    # batch (half the steps; run with --epochs 20 so that it gets the default's images and more)
    "default+batch32": [*DEFAULT, "--batch-size", "32"],
    "default+batch128": [*DEFAULT, "--batch-size", "128"],
    # the same settings, run longer with --epochs 20 (the rates still fall over the last quarter)
    "default-20": DEFAULT,
    "default+minibatch_std-20": [*DEFAULT, "--minibatch-std"],
    # The R1 gradient penalty on D at real images (lazy: every 16 steps, 16 times the weight): does
    # a smoother D at the real glyphs let G spread over more of them? gamma 0.1, 1 and 10.
    "default+r1_0.1": [*DEFAULT, "--r1", "0.1"],
    "default+r1_1": [*DEFAULT, "--r1", "1"],
    "default+r1_10": [*DEFAULT, "--r1", "10"],
    # A wider D (its channels x1.25, x1.5): narrower ones (docs/ablation.md, "A narrower D") lowered
    # recall plus recognisability (1.526 at 0.5, 1.570 at 0.75, 1.585 at 1): does a wider one raise it?
    "default+d_width1.25": [*DEFAULT, "--d-width", "1.25"],
    "default+d_width1.5": [*DEFAULT, "--d-width", "1.5"],
    "diffaugment": ["--diffaugment"],
    "label_smoothing": ["--label-smoothing", "0.1"],
    "ttur": ["--lr-g", "1e-4", "--lr-d", "4e-4"],  # separate learning rates, D faster
    "beta1_0.9": ["--beta-1", "0.9"],  # Adam's default instead of the DCGAN paper's 0.5
}


def last_evaluated(metrics_csv: Path) -> dict:
    with open(metrics_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("fd")]
    return {k: float(v) for k, v in rows[-1].items() if v != ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-per-class", type=int, default=400, help="100: the small-data case")
    parser.add_argument("--eval-every", type=int, default=10)
    args = parser.parse_args()
    if args.eval_every < 1:  # each setting's figures are its last evaluation
        parser.error("--eval-every must be >= 1: the summary is each run's last evaluation")

    summary_path = args.out / "ablation.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name in args.only or SETTINGS:
        run = args.out / name
        command = [sys.executable, "-m", "runegen", "train", "--epochs", str(args.epochs), "--seed",
                   str(args.seed), "--eval-every", str(args.eval_every), "--samples-per-class",
                   str(args.samples_per_class), "--out", str(run), *BASELINE, *SETTINGS[name]]
        started = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:  # train's own one line (a run folder in use, say), not a bare CalledProcessError
            sys.exit(f"ablation.py: {name}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        summary[name] = {"args": SETTINGS[name], **last_evaluated(run / "metrics.csv"),
                         "wall_s": round(time.perf_counter() - started, 1)}
        args.out.mkdir(parents=True, exist_ok=True)
        atomic.write_text(summary_path, json.dumps(summary, indent=2) + "\n")
        print(name, json.dumps(summary[name]), flush=True)


if __name__ == "__main__":
    main()
