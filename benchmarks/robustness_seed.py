"""Time the parts of one seed of the robustness experiment (examples/robustness.py).

For each seed and method: training (epochs and time per epoch; the first seed
includes the compilations), the metric fit with the codes, and the geodesics.
Both wall-clock and process CPU seconds are printed: on a machine shared with
other work the CPU seconds are the steadier measure of the work done.

    python benchmarks/robustness_seed.py                 # full mode, seeds 0 and 1
    python benchmarks/robustness_seed.py --quick --seeds 0 1 2
    python benchmarks/robustness_seed.py --no-geodesics  # training and fit only
    python benchmarks/robustness_seed.py --json out.json

Results are reported in docs/robustness.md.
"""

import argparse
import importlib.util
import json
import time
from pathlib import Path

import jax
import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "examples" / "robustness.py"
_SPEC = importlib.util.spec_from_file_location("robustness", _PATH)
robustness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(robustness)


def _timed(function, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = jax.block_until_ready(function(*args))
    return result, time.perf_counter() - wall, time.process_time() - cpu


def time_seed(config, data, pairs, seed: int, geodesics: bool) -> dict:
    """Per method: `{part: (wall seconds, cpu seconds)}`, epochs, best epoch."""
    keys = jax.random.split(jax.random.key(seed), 3)
    record = {}
    for method, num_members, key in zip(
        robustness.METHODS, (config.num_members, 1), keys[:2]
    ):
        vae, *train = _timed(
            robustness.train_model, config, data, num_members, key, False
        )
        metric, *fit = _timed(robustness.fit_metric, method, config, data, vae, keys[2])
        parts = {"train": train, "fit": fit}
        if geodesics:
            codes, train_codes = (
                np.asarray(robustness.lg.training.encode(vae.encoder, images))
                for images in (data.test, data.train)
            )
            _, *parts["geodesic"] = _timed(
                robustness.measure_geodesics, config, metric, codes, pairs, train_codes
            )
        record[method] = {
            "parts": parts,
            "epochs": vae.num_epochs,
            "best_epoch": vae.best_epoch,
            "validation_loss": float(vae.validation_loss[vae.best_epoch]),
        }
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick preset")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--no-geodesics", action="store_true")
    parser.add_argument("--json", help="also write the timings to this file")
    args = parser.parse_args()
    config = robustness.PRESETS["quick" if args.quick else "full"]
    data = robustness.load_data(config)
    pairs = robustness.choose_pairs(len(data.test), config.num_pairs, 0)
    print(
        f"{config.dataset}: {len(data.train)} training images, {len(pairs)} pairs, "
        f"K = {config.num_members}, {jax.devices()[0].device_kind}"
    )
    records = {}
    for seed in args.seeds:
        start = time.perf_counter()
        records[seed] = record = time_seed(
            config, data, pairs, seed, not args.no_geodesics
        )
        for method, result in record.items():
            train_wall = result["parts"]["train"][0]
            print(
                f"seed {seed} {method:8s} {result['epochs']:3d} epochs "
                f"({1e3 * train_wall / result['epochs']:.0f} ms each): "
                + ", ".join(
                    f"{part} {wall:.1f} s (cpu {cpu:.1f})"
                    for part, (wall, cpu) in result["parts"].items()
                ),
                flush=True,
            )
        print(f"seed {seed}: {time.perf_counter() - start:.1f} s in all", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
