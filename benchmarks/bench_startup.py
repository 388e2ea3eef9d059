"""Figure: how long a ``forgeline`` command takes before it does any work.

Target: ``forgeline --help`` under 0.5 s as a whole process on 2 cores. Measured beside the
reference every command pays anyway, a bare ``python -c pass`` of the same interpreter, so
that Forgeline's own start-up (its imports, Typer's) shows as the difference. Also timed:
``forgeline monitor --help`` and ``forgeline train --help`` (a command's own options), and
``import forgeline`` (the public API loads its names on first use).

Each command runs ``--repeats`` times in a fresh process, alternating, after one untimed
warm-up of each (the OS file cache); the median is reported.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 15] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import check_quiet, print_machine, write_json

TARGET_S = 0.5
PYTHON = sys.executable
FORGELINE = str(Path(sys.executable).with_name("forgeline"))
COMMANDS = {
    "python -c pass (reference)": [PYTHON, "-c", "pass"],
    "python -c 'import forgeline'": [PYTHON, "-c", "import forgeline"],
    "forgeline --help": [FORGELINE, "--help"],
    "forgeline monitor --help": [FORGELINE, "monitor", "--help"],
    "forgeline train --help": [FORGELINE, "train", "--help"],
}


def _once(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    print_machine()
    check_quiet()
    for command in COMMANDS.values():
        _once(command)  # warm-up: the file cache, not measured
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(_once(command))
    reference = statistics.median(times["python -c pass (reference)"])
    results = {}
    for name, values in times.items():
        median = statistics.median(values)
        results[name] = {"median_s": median, "min_s": min(values), "max_s": max(values),
                         "over_reference_s": median - reference}
        verdict = ""
        if name == "forgeline --help":
            verdict = f"   target < {TARGET_S:g} s: {'MET' if median < TARGET_S else 'MISSED'}"
        print(f"{name:<30} median {median:5.3f} s (min {min(values):5.3f}, max "
              f"{max(values):5.3f}); {median - reference:+.3f} s over the bare interpreter"
              f"{verdict}")
    write_json(args.json, "bench_startup", {"target_s": TARGET_S, "commands": results})


if __name__ == "__main__":
    main()
