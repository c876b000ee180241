"""Speed benchmark: the course CNN against the official PyTorch and Keras MNIST examples, on this machine.

    python scripts/bench.py                      # full: 5 seeds per network, each example's own epochs (hours)
    python scripts/bench.py --seeds 1            # one seed per network (about 30 minutes)
    python scripts/bench.py --pytorch-epochs 5   # stop the slowest network (the PyTorch example) after 5 epochs
    python scripts/bench.py --quick              # a smoke run (6,000 images, 1 epoch, 1 seed; not comparable)
    python scripts/bench.py --only fast keras    # just these networks (course fast pytorch keras)

For each network, over several seeds (the median and, in brackets, the range): training seconds and epochs until
test accuracy first reaches 99.0% and until it stays there (no later measurement below 99.0%), final test accuracy
and training images per second. Every network gets the same evaluation schedule: test accuracy (all 10,000 test
images) every twentieth of an epoch, with the training clock stopped while it is measured, so the times are
training time only. The references are the examples' tutorial defaults, not tuned for speed; the fast recipe was
chosen on a validation split by scripts/choose_recipe.py, never on the test set.

- course CNN: helpers.torch_models.CourseCNN (channels-last) with Chapter 8's recipe (helpers.recipes.CHAPTER8):
  AdamW + one-cycle (25% warm-up), batch 128, augmentation, label smoothing, 15 epochs
- course CNN, fast recipe (helpers.recipes.FAST): the same network and epochs; batch 64, a higher peak learning rate
  after a 3% warm-up, and test accuracy of the exponential moving average of its weights (train.ema)
Every PyTorch network is trained by the course's one loop (helpers.train.fit, through helpers.recipes.train_recipe
for the course CNN); its callback hook takes the measurements.
- PyTorch example (pytorch/examples mnist/main.py): Conv32-Conv64-MaxPool-Dropout-FC128-FC10, Adadelta lr 1.0,
  StepLR gamma 0.7 per epoch, batch 64, 14 epochs
- Keras example ("Simple MNIST convnet", keras.io): Conv32-Pool-Conv64-Pool-Flatten-Dropout 0.5-Dense10, Adam,
  batch 128, 15 epochs (the example holds out 10% for validation; here every network trains on all 60,000 images)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import helpers  # noqa: E402
from helpers import count_params, recipes, train  # noqa: E402

TARGET = 0.99


class Tracker:
    """Training clock that pauses during evaluation; records (seconds, images, test accuracy) points."""

    def __init__(self, evaluate: Callable[[Any], float], every: int):
        self.evaluate, self.every = evaluate, every
        self.points: list[tuple[float, int, float]] = []
        self.seconds, self.images, self.steps, self.start = 0.0, 0, 0, None

    def resume(self) -> None:
        self.start = time.perf_counter()

    def step(self, images: int, model: Any) -> None:
        """Count one training step (images seen so far in all); evaluate `model` every `every` steps."""
        self.steps += 1
        self.images = images
        if self.steps % self.every == 0:
            self.measure(model)

    def measure(self, model: Any) -> None:
        self.seconds += time.perf_counter() - self.start
        self.points.append((self.seconds, self.images, self.evaluate(model)))
        self.start = time.perf_counter()

    def summary(self, name: str, model: Any, epochs: float, train_images: int = 60_000) -> dict:
        """The run's results: times (and epochs) to first reach and to stay at the target, accuracy, speed."""
        if not self.points or self.points[-1][1] != self.images:
            self.measure(model)
        reached = next(((s, n) for s, n, acc in self.points if acc >= TARGET), None)
        stays = next(((s, n) for i, (s, n, _) in enumerate(self.points)
                      if all(acc >= TARGET for *_, acc in self.points[i:])), None)
        return {"name": name, "params": count_params(model), "epochs": epochs, "seconds_to_99": reached and reached[0],
                "epochs_to_99": reached and reached[1] / train_images, "seconds_stays_99": stays and stays[0],
                "epochs_stays_99": stays and stays[1] / train_images, "final_acc": self.points[-1][2],
                "best_acc": max(p[2] for p in self.points), "train_seconds": self.seconds,
                "images_per_second": self.images / self.seconds, "points": self.points}


def images_after(step: int, n: int, batch_size: int) -> int:
    """Images seen after `step` optimizer steps of batch_size over n images per epoch (the last batch is smaller)."""
    epochs, part = divmod(step, math.ceil(n / batch_size))
    return epochs * n + min(part * batch_size, n)


def run_torch(name: str, model, fit: Callable, data, batch_size: int, evals: int) -> dict:
    """Train a PyTorch model with `fit(callback)` (the course's loop), tracking test accuracy every 1/evals epoch."""
    (x, _), test = data
    test_loader = train.torch_loader(*test, batch_size=1000)
    tracker = Tracker(lambda net: train.evaluate(net, test_loader)[1], max(1, math.ceil(len(x) / batch_size) // evals))
    final = {}

    def callback(step: int, net) -> None:
        final["model"] = net
        tracker.step(images_after(step, len(x), batch_size), net)

    tracker.resume()
    fit(callback)
    return tracker.summary(name, final["model"], round(tracker.images / len(x), 2), len(x))


def course_cnn(data, epochs: int, evals: int, seed: int = 0, recipe: recipes.Recipe = recipes.CHAPTER8,
               name: str = "course CNN (PyTorch)") -> dict:
    """The course CNN trained with one of helpers.recipes' recipes (Chapter 8's, or FAST)."""
    recipe = replace(recipe, epochs=epochs, seed=seed)
    model = recipe.build()
    return run_torch(name, model, lambda callback: recipes.train_recipe(model, recipe, data[0], callback=callback,
                                                                        progress=False), data, recipe.batch_size, evals)


def pytorch_example(data, epochs: int, evals: int, seed: int = 0) -> dict:
    """pytorch/examples mnist: Adadelta(lr=1.0), StepLR(step_size=1, gamma=0.7) per epoch, batch 64."""
    import torch

    from helpers.torch_models import torch_official_cnn

    helpers.seed_everything(seed)
    model = torch_official_cnn()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    loader = train.torch_loader(*data[0], batch_size=64, shuffle=True, seed=seed)
    return run_torch("PyTorch example", model, lambda callback: train.fit(
        model, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler, scheduler_step="epoch",
        callback=callback, progress=False), data, 64, evals)


def keras_example(data, epochs: int, evals: int, seed: int = 0) -> dict:
    """keras.io "Simple MNIST convnet": inputs scaled to 0..1, Adam, categorical cross-entropy, batch 128."""
    helpers.quiet_tensorflow()
    import keras

    helpers.seed_everything(seed)
    (x, y), (x_test, y_test) = data
    x = (x.astype("float32") / 255)[..., None]
    x_test = (x_test.astype("float32") / 255)[..., None]
    from helpers.keras_models import keras_official_cnn

    model = keras_official_cnn()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    steps = -(-len(x) // 128)

    def evaluate(net) -> float:
        return float(np.mean(net.predict(x_test, batch_size=1000, verbose=0).argmax(1) == y_test))

    tracker = Tracker(evaluate, max(1, steps // evals))

    class Track(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            tracker.resume()

        def on_train_batch_end(self, batch, logs=None):
            tracker.step(images_after(tracker.steps + 1, len(x), 128), self.model)

        def on_train_end(self, logs=None):
            tracker.seconds += time.perf_counter() - tracker.start
            tracker.start = time.perf_counter()

    model.fit(x, keras.utils.to_categorical(y, 10), batch_size=128, epochs=epochs, verbose=0, callbacks=[Track()])
    tracker.start = time.perf_counter()  # the final measurement adds no training time
    return tracker.summary("Keras example", model, round(tracker.images / len(x), 2), len(x))


def summarise(runs: list[dict]) -> dict:
    """One network's seeds in one row: for each measure its median and (min, max); how many seeds reached 99.0%."""
    out = {"name": runs[0]["name"], "params": runs[0]["params"], "epochs": runs[0]["epochs"], "seeds": len(runs)}
    for key in ("seconds_to_99", "epochs_to_99", "seconds_stays_99", "epochs_stays_99", "final_acc",
                "images_per_second"):
        values = [r[key] for r in runs]
        reached = [v for v in values if v is not None]
        out[key] = (float(np.median(values)), min(values), max(values)) if len(reached) == len(values) else None
        out[key + "_count"] = len(reached)
    return out


def table(rows: list[dict]) -> str:
    """The summarised results as a Markdown table: medians, with the range over the seeds in brackets."""
    lines = ["| network | parameters | epochs | seeds | seconds to 99.0% | epochs to 99.0% | stays ≥ 99.0% from "
             "(epoch) | final test accuracy | training images/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def cell(row: dict, key: str, form: str) -> str:
        value = row[key]
        if value is None:
            return f"not reached by {row['seeds'] - row[key + '_count']} of {row['seeds']}"
        median, low, high = value
        return format(median, form) + ("" if row["seeds"] == 1 else f" ({low:{form}}–{high:{form}})")

    for r in rows:
        lines.append(f"| {r['name']} | {r['params']:,} | {r['epochs']:g} | {r['seeds']} | "
                     f"{cell(r, 'seconds_to_99', '.1f')} | {cell(r, 'epochs_to_99', '.2f')} | "
                     f"{cell(r, 'epochs_stays_99', '.2f')} | {cell(r, 'final_acc', '.2%')} | "
                     f"{cell(r, 'images_per_second', ',.0f')} |")
    return "\n".join(lines)


def speedups(course: dict, rows: list[dict]) -> str:
    """How many times sooner (medians) than the faster reference the course row reaches 99.0% and stays there."""
    words = []
    for key, what in (("seconds_to_99", "reaches 99.0%"), ("seconds_stays_99", "stays at or above 99.0%"),
                      ("epochs_to_99", "reaches 99.0% in")):
        refs = [r[key][0] for r in rows if not r["name"].startswith("course") and r[key] is not None]
        if refs and course[key]:
            unit = " fewer epochs" if key.startswith("epochs") else " sooner"
            words.append(f"{what} {min(refs) / course[key][0]:.1f}x{unit} than the faster reference")
    return "; ".join(words) or "no reference reached 99.0% (or the course CNN did not)"


def main() -> int:
    """Run the networks one after another and print (and save) the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a one-minute smoke run on a tiny budget")
    parser.add_argument("--pytorch-epochs", type=int, default=14, help="epochs of the PyTorch example (its own: 14)")
    parser.add_argument("--keras-epochs", type=int, default=15, help="epochs of the Keras example (its own: 15)")
    parser.add_argument("--evals", type=int, default=20, help="test-accuracy measurements per epoch (default 20)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these: course fast pytorch keras")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per network (default 5; medians are reported)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    (x, y), test = helpers.load_mnist(progress=False)
    if args.quick:  # 6,000 images, 1 epoch each, 5 measurements: checks the machinery, not the speed
        x, y = helpers.subset(x, y, 6000)
        test = helpers.subset(*test, 2000)
    data = ((x, y), test)
    evals = 5 if args.quick else args.evals
    course_epochs = 1 if args.quick else recipes.CHAPTER8.epochs
    torch_epochs, keras_epochs = (1, 1) if args.quick else (args.pytorch_epochs, args.keras_epochs)
    import torch

    seeds = 1 if args.quick else args.seeds
    print(f"benchmark on {helpers.describe_cpu()} · {torch.get_num_threads()} PyTorch threads · torch "
          f"{torch.__version__} · {'quick' if args.quick else 'full'} run · {seeds} seed(s) per network · "
          f"test accuracy every 1/{evals} epoch, evaluation time excluded", flush=True)
    runs = [("course", course_cnn, course_epochs),
            ("fast", partial(course_cnn, recipe=recipes.FAST, name="course CNN, fast recipe (EMA)"),
             course_epochs),
            ("pytorch", pytorch_example, torch_epochs), ("keras", keras_example, keras_epochs)]
    rows, every_run = [], []
    for key, fn, epochs in runs:
        if args.only and key not in args.only:
            continue
        results = []
        for seed in range(seeds):
            start = time.perf_counter()
            results.append(fn(data, epochs, evals, seed))
            r = results[-1]
            print(f"  {r['name']}, seed {seed}: final {r['final_acc']:.2%}, 99.0% after "
                  f"{r['seconds_to_99'] or float('nan'):.1f} s (epoch {r['epochs_to_99'] or float('nan'):.2f}), "
                  f"{r['images_per_second']:,.0f} images/s ({time.perf_counter() - start:.0f} s with evaluation)",
                  flush=True)
        every_run += [{**r, "seed": seed} for seed, r in enumerate(results)]
        rows.append(summarise(results))
    print()
    print(table(rows))
    print()
    for course in (r for r in rows if r["name"].startswith("course")):
        print(f"{course['name']}: {speedups(course, rows)}")
    if args.out:
        args.out.write_text(json.dumps(every_run, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
