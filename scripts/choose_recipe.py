"""Choose the course CNN's fast recipe on a validation split, never on the test set.

    python scripts/choose_recipe.py            # the grid below on seed 0, then the best 4 on seeds 1 and 2 too
    python scripts/choose_recipe.py --quick    # a smoke run: 2 candidates, 1 seed, 6,000 images

Every candidate is Chapter 8's recipe with other settings for the batch size, the peak learning rate and the
warm-up, all with a moving average of the weights (decay 0.99: Chapter 8 shows what it does to the same run).
It trains the course CNN on the 55,000 training images (5,000 held out for
validation, Chapter 8's split) for the first EPOCHS epochs of its 15-epoch schedule, and measures validation
accuracy every twentieth of an epoch — of the weights it would use: the moving average, when it has one. Its score
is the epoch from which that accuracy stays at or above 99.0% to the end of the measured stretch (a lucky spike
does not count), lower is better. Every candidate runs with seed 0; the best FINALISTS run with two more seeds and
are ranked by the median over their three seeds. The winner is helpers.recipes.FAST, which
scripts/bench.py then measures on the test set.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import helpers  # noqa: E402
from helpers import recipes, train  # noqa: E402

GRID = {"batch_size": [64, 128], "max_lr": [3e-3, 5e-3, 8e-3], "warmup": [0.03, 0.1], "ema": [0.99]}
EPOCHS, EVALS, TARGET, FINALISTS = 2, 20, 0.99, 4


def stays_from(points: list[tuple[float, float]]) -> float | None:
    """The first epoch from which every later (epoch, accuracy) point is at or above the target, or None."""
    for i, (epoch, _) in enumerate(points):
        if all(acc >= TARGET for _, acc in points[i:]):
            return epoch
    return None


def score(recipe: recipes.Recipe, data, val, epochs: int, evals: int) -> list[tuple[float, float]]:
    """(epoch, validation accuracy) every 1/evals epoch over the first `epochs` epochs of the recipe's run."""
    model = recipe.build()
    steps = math.ceil(len(data[1]) / recipe.batch_size)
    val_loader = train.torch_loader(*val, batch_size=1000)
    points: list[tuple[float, float]] = []

    def measure(step: int, net) -> None:
        if step % max(1, steps // evals) == 0:
            points.append((step / steps, train.evaluate(net, val_loader)[1]))

    recipes.train_recipe(model, recipe, data, callback=measure, max_steps=epochs * steps, progress=False)
    return points


def main() -> int:
    """Train every candidate, print a table sorted by score, name the winner."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per finalist (default 3)")
    parser.add_argument("--out", type=Path, default=None, help="also write every curve as JSON here")
    args = parser.parse_args()
    (x, y), _ = helpers.load_mnist(progress=False)  # the test set is not even loaded into a variable
    data, val = helpers.split_train_val(x, y, val_size=recipes.VALIDATION, seed=0)
    grid, seeds, epochs = GRID, args.seeds, EPOCHS
    if args.quick:
        data, val = helpers.subset(*data, 6000), helpers.subset(*val, 1000)
        grid, seeds, epochs = {**GRID, "batch_size": [64], "max_lr": [5e-3], "ema": [0.99]}, 1, 1
    print(f"choosing the fast recipe on {len(val[1]):,} validation images; {helpers.describe_cpu()}", flush=True)
    curves: list[dict] = []

    def run(candidate: recipes.Recipe, seed_list: list[int]) -> list[float | None]:
        stays = []
        for seed in seed_list:
            points = score(replace(candidate, seed=seed), data, val, epochs, EVALS)
            stays.append(stays_from(points))
            curves.append({"recipe": asdict(candidate), "seed": seed, "points": points})
        changed = {k: getattr(candidate, k) for k in grid}
        print(f"  {changed} seeds {seed_list}: stays >= 99.0% from epoch "
              f"{', '.join('never' if s is None else f'{s:.2f}' for s in stays)}", flush=True)
        return stays

    def median(stays: list[float | None]) -> float:
        return math.inf if None in stays else float(np.median(stays))

    candidates = [replace(recipes.CHAPTER8, **dict(zip(grid, v, strict=True)))
                  for v in itertools.product(*grid.values())]
    first = {c: run(c, [0]) for c in candidates}
    finalists = sorted(candidates, key=lambda c: median(first[c]))[:FINALISTS if seeds > 1 else len(candidates)]
    more = {}
    if seeds > 1:
        print(f"\nthe best {len(finalists)} on {seeds - 1} more seeds:", flush=True)
        more = {c: run(c, list(range(1, seeds))) for c in finalists}
    stays_of = {c: first[c] + more.get(c, []) for c in candidates}
    rows = [(median(stays_of[c]) if c in finalists else math.inf, c, stays_of[c]) for c in candidates]
    rows.sort(key=lambda r: (r[0], median(r[2][:1])))
    print("\n| batch | peak lr | warm-up | EMA | stays ≥ 99.0% from (epoch, per seed) | median |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for med, c, stays in rows:
        per_seed = ", ".join("never" if s is None else f"{s:.2f}" for s in stays)
        print(f"| {c.batch_size} | {c.max_lr:g} | {c.warmup:g} | {c.ema or 'none'} | {per_seed} | "
              f"{'' if len(stays) == 1 else ('never' if math.isinf(med) else f'{med:.2f}')} |")
    best = rows[0][1]
    print(f"\nchosen on validation: batch {best.batch_size}, peak lr {best.max_lr:g}, warm-up {best.warmup:g}, "
          f"EMA {best.ema}")
    if args.out:
        args.out.write_text(json.dumps(curves, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
