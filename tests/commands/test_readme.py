"""The README's commands, followed in order as a new user does, hold together (no training here:
where each run goes is worked out as `train` picks its folder)."""

import re
import shlex

from conftest import ROOT


def test_the_readmes_commands_name_the_runs_made_before_them():
    """The conditional walkthrough generated from runs/train, which the first section's run had
    taken (the conditional one went to runs/train2): "not class-conditional", exit 2."""
    readme = (ROOT / "README.md").read_text()
    runs: dict[str, bool] = {}  # run folder -> conditional
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            while words and re.match(r"\w+=", words[0]):  # TF_CONFIG=... before the command
                words.pop(0)
            if words[:1] != ["runegen"]:
                continue
            if words[1] == "train":
                out = (words[words.index("--out") + 1] if "--out" in words else
                       next(f"runs/train{n if n > 1 else ''}" for n in range(1, 100)
                            if f"runs/train{n if n > 1 else ''}" not in runs))
                runs[out] = "--conditional" in words
                continue
            for word in words:
                if word.startswith("runs/"):
                    run = "/".join(word.split("/")[:2])
                    assert run in runs, (line, "no run made there before")
                    if words[1] == "generate" and {"--rune", "--class"} & set(words):
                        assert runs[run], (line, f"{run} is not the conditional run")
