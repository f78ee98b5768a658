"""What compiling a default `geodesic` costs on a CPU, with XLA's CPU fusion
emitters (its default) and without them (`--xla_cpu_use_fusion_emitters=false`).

For each model and setting a fresh process loads the model, times the first
`lg.geodesic` call (wall seconds: tracing, compiling and one solve), then the
next `--pairs` pairs one at a time (process CPU seconds per pair, compiled).
Both settings run `--repeats` times, alternating. Results go to
`benchmarks/results/compile_time.json`.

    PYTHONPATH=src:benchmarks python benchmarks/compile_time.py relu elu
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
SETTINGS = {
    "fusion emitters (XLA's default)": "",
    "no fusion emitters": "--xla_cpu_use_fusion_emitters=false",
}
MEASURE = """
import json, sys, time
import jax
import models
import latentgeo as lg
metric, _, query = models.load(sys.argv[1])
rows, cols = models.pairs()
num_pairs = int(sys.argv[2])
start = time.perf_counter()
jax.block_until_ready(lg.geodesic(metric, query[rows[0]], query[cols[0]]).length)
first = time.perf_counter() - start
start = time.process_time()
for k in range(1, num_pairs + 1):
    jax.block_until_ready(lg.geodesic(metric, query[rows[k]], query[cols[k]]).length)
print(json.dumps([first, (time.process_time() - start) / num_pairs]))
"""


def measure(model: str, flags: str, num_pairs: int) -> tuple[float, float]:
    """First call's wall seconds and compiled CPU seconds per pair, in a fresh
    process with `XLA_FLAGS=flags`."""
    env = dict(os.environ, XLA_FLAGS=flags)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, model, str(num_pairs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    report = {}
    for model in args.models:
        runs = {name: [] for name in SETTINGS}
        for _ in range(args.repeats):
            for name, flags in SETTINGS.items():
                runs[name].append(measure(model, flags, args.pairs))
        report[model] = {
            name: {
                "first_call_s": float(np.median([r[0] for r in found])),
                "cpu_s_per_pair": float(np.median([r[1] for r in found])),
                "runs": found,
            }
            for name, found in runs.items()
        }
        print(model, json.dumps(report[model], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compile_time.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
