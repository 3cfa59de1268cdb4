"""Where the time of runegen's training step goes, by oneDNN primitive, on this CPU.

Runs the step of benchmarks/step_settings.py (a setting of its list, the default by default) once
with `ONEDNN_VERBOSE=profile_exec` and sums the execution times oneDNN reports over the timed steps,
by primitive, pass and shape: a convolution's shape `mb64_ic64oc128_ih14oh7kh5...` is the batch,
its input and output channels, sizes and kernel. A Conv2DTranspose runs as a convolution's
`backward_data` (its backward pass as `forward_training` and `backward_weights`). With two threads
oneDNN may run two primitives at once, so the times can add up to more than the step's wall time:
read the shares. Set ONEDNN_MAX_CPU_ISA=AVX2 to see oneDNN's AVX2 kernels on a CPU with AVX-512.

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/step_profile.py [--steps 10] [--precision fp32] [--setting d-kernel-3]

A record, not a test.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_settings import SETTINGS, positive_int, run_worker  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=10)
    parser.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"),
                        help="as runegen train --precision")
    parser.add_argument("--setting", default="default", choices=list(SETTINGS))
    parser.add_argument("--top", type=int, default=20, help="rows to print")
    args = parser.parse_args()
    setting = SETTINGS[args.setting]
    spec = {"steps": args.steps, "precision": args.precision} | {k: v for k, v in setting.items() if k != "env"}
    env = {**os.environ, **setting.get("env", {}), "ONEDNN_VERBOSE": "profile_exec"}
    output = run_worker(spec, env)
    warm_up, timed = output.split("timed steps follow\n", 1)
    milliseconds, calls = collections.Counter(), collections.Counter()
    for line in timed.splitlines():
        fields = line.split(",")
        if line.startswith("onednn_verbose") and fields[2:4] == ["primitive", "exec"]:
            key = (fields[5], fields[7], fields[-2])  # primitive, pass, shape
            milliseconds[key] += float(fields[-1]) / args.steps
            calls[key] += 1 / args.steps
    total = sum(milliseconds.values())
    print(f"{args.setting}, {args.precision}: {float(timed.splitlines()[-1]):.1f} images/s; "
          f"oneDNN primitives {total:.1f} ms per step")
    for (primitive, kind, shape), ms in milliseconds.most_common(args.top):
        print(f"{ms:8.2f} ms {ms / total:6.1%}  x{calls[(primitive, kind, shape)]:.0f}  {primitive} {kind} {shape}")


if __name__ == "__main__":
    main()
