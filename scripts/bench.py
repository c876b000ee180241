"""Speed benchmark: the course CNN against the official PyTorch and Keras MNIST examples, on this machine.

    python scripts/bench.py                      # full: all 60,000 images, each example's own epochs (~20 min)
    python scripts/bench.py --pytorch-epochs 5   # stop the slowest network (the PyTorch example) after 5 epochs
    python scripts/bench.py --quick              # a one-minute smoke run (6,000 images, 1 epoch; not comparable)
    python scripts/bench.py --only fast keras    # just these networks (course fast pytorch keras)

For each network: parameters, epochs run, training seconds until test accuracy first reaches 99.0% and until it
stays there (no later measurement below 99.0%), final test accuracy and training images per second. Test accuracy
(all 10,000 test images) is measured every twentieth of an epoch; the training clock is stopped while it is
measured, so the times are training time only.

- course CNN: helpers.models.torch_cnn (channels-last) with Chapter 8's recipe (models.PRETRAINED_RECIPE): AdamW +
  one-cycle (25% warm-up), batch 128, augmentation, label smoothing, 15 epochs
- course CNN, fast recipe (models.FAST_RECIPE): the same network and epochs; batch 64, a higher peak learning rate
  after a 3% warm-up, and test accuracy of the exponential moving average of its weights (train.ema)
- PyTorch example (pytorch/examples mnist/main.py): Conv32-Conv64-MaxPool-Dropout-FC128-FC10, Adadelta lr 1.0,
  StepLR gamma 0.7 per epoch, batch 64, 14 epochs
- Keras example ("Simple MNIST convnet", keras.io): Conv32-Pool-Conv64-Pool-Flatten-Dropout 0.5-Dense10, Adam,
  batch 128, 15 epochs (the example holds out 10% for validation; here every network trains on all 60,000 images)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import helpers  # noqa: E402
from helpers import models, train  # noqa: E402

TARGET = 0.99


class Tracker:
    """Training clock that pauses during evaluation; records (seconds, images, test accuracy) points."""

    def __init__(self, evaluate, every: int, budget_images: int | None = None):
        self.evaluate, self.every, self.budget = evaluate, every, budget_images
        self.points: list[tuple[float, int, float]] = []
        self.seconds, self.images, self.steps, self.start = 0.0, 0, 0, None

    def resume(self) -> None:
        self.start = time.perf_counter()

    def step(self, batch: int) -> bool:
        """Count one training step; evaluate every `every` steps; return True when the image budget is spent."""
        self.steps += 1
        self.images += batch
        if self.steps % self.every == 0:
            self.measure()
        return self.budget is not None and self.images >= self.budget

    def measure(self) -> None:
        self.seconds += time.perf_counter() - self.start
        self.points.append((self.seconds, self.images, self.evaluate()))
        self.start = time.perf_counter()

    def summary(self, name: str, params: int, epochs: float, train_images: int = 60_000) -> dict:
        """The run's results: times (and epochs) to first reach and to stay at the target, accuracy, speed."""
        if not self.points or self.points[-1][1] != self.images:
            self.measure()
        reached = next(((s, n) for s, n, acc in self.points if acc >= TARGET), None)
        stays = next(((s, n) for i, (s, n, _) in enumerate(self.points)
                      if all(acc >= TARGET for *_, acc in self.points[i:])), None)
        return {"name": name, "params": params, "epochs": epochs, "seconds_to_99": reached and reached[0],
                "epochs_to_99": reached and reached[1] / train_images, "seconds_stays_99": stays and stays[0],
                "epochs_stays_99": stays and stays[1] / train_images, "final_acc": self.points[-1][2],
                "best_acc": max(p[2] for p in self.points), "train_seconds": self.seconds,
                "images_per_second": self.images / self.seconds, "points": self.points}


def run_torch(name, model, optimizer, scheduler, per_batch: bool, epochs: int, batch_size: int, data, evals: int,
              budget: int | None, augment=None, label_smoothing: float = 0.0, ema_decay: float | None = None) -> dict:
    """Train a PyTorch model with a plain loop (the examples' loop), tracking test accuracy (of the weights'
    moving average when ema_decay is given)."""
    import torch
    import torch.nn.functional as F

    (x, y), (x_test, y_test) = data
    loader = helpers.torch_loader(x, y, batch_size=batch_size, shuffle=True, seed=0)
    test_images = torch.from_numpy(helpers.normalize(x_test)).unsqueeze(1)
    labels = torch.from_numpy(y_test.astype(np.int64))

    averaged = train.ema(model, ema_decay) if ema_decay else None

    def evaluate() -> float:
        tested = averaged.module if averaged else model
        tested.eval()
        with torch.no_grad():
            correct = sum((tested(xb).argmax(1) == yb).sum().item()
                          for xb, yb in zip(test_images.split(1000), labels.split(1000), strict=True))
        model.train()
        return correct / len(labels)

    tracker = Tracker(evaluate, max(1, len(loader) // evals), budget)
    model.train()
    done = False
    tracker.resume()
    for _ in range(epochs):
        for xb, yb in loader:
            if augment is not None:
                xb = augment(xb)
            loss = F.cross_entropy(model(xb), yb, label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if averaged:
                averaged.update_parameters(model)
            if per_batch:
                scheduler.step()
            if done := tracker.step(len(yb)):
                break
        if not per_batch:
            scheduler.step()
        if done:
            break
    return tracker.summary(name, models.count_params(model), round(tracker.images / len(x), 2), len(x))


def course_cnn(data, epochs: int, evals: int, budget: int | None, recipe: dict = models.PRETRAINED_RECIPE,
               name: str = "course CNN (PyTorch)") -> dict:
    """The course CNN trained with a recipe of models.py (Chapter 8's, or FAST_RECIPE)."""
    import torch

    helpers.seed_everything(0)
    r = recipe
    model = models.torch_cnn(r["width"], r["dropout"]).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=r["max_lr"], weight_decay=r["weight_decay"])
    steps = -(-len(data[0][0]) // r["batch_size"])
    scheduler = train.one_cycle(optimizer, r["max_lr"], epochs, steps, pct_start=r.get("warmup", 0.25))
    return run_torch(name, model, optimizer, scheduler, True, epochs, r["batch_size"], data, evals, budget,
                     augment=train.random_affine, label_smoothing=r["label_smoothing"], ema_decay=r.get("ema"))


def pytorch_example(data, epochs: int, evals: int, budget: int | None) -> dict:
    """pytorch/examples mnist: Adadelta(lr=1.0), StepLR(step_size=1, gamma=0.7), batch 64."""
    import torch

    helpers.seed_everything(0)
    model = models.torch_official_cnn()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return run_torch("PyTorch example", model, optimizer, scheduler, False, epochs, 64, data, evals, budget)


def keras_example(data, epochs: int, evals: int, budget: int | None) -> dict:
    """keras.io "Simple MNIST convnet": inputs scaled to 0..1, Adam, categorical cross-entropy, batch 128."""
    helpers.quiet_tensorflow()
    import keras

    helpers.seed_everything(0)
    (x, y), (x_test, y_test) = data
    x = (x.astype("float32") / 255)[..., None]
    x_test = (x_test.astype("float32") / 255)[..., None]
    model = models.keras_official_cnn()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    steps = -(-len(x) // 128)

    def evaluate() -> float:
        return float(np.mean(model.predict(x_test, batch_size=1000, verbose=0).argmax(1) == y_test))

    tracker = Tracker(evaluate, max(1, steps // evals), budget)

    class Track(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            tracker.resume()

        def on_train_batch_end(self, batch, logs=None):
            if tracker.step(128 if batch < steps - 1 else len(x) - 128 * (steps - 1)):
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            tracker.seconds += time.perf_counter() - tracker.start
            tracker.start = time.perf_counter()

    model.fit(x, keras.utils.to_categorical(y, 10), batch_size=128, epochs=epochs, verbose=0, callbacks=[Track()])
    tracker.start = time.perf_counter()  # the final measurement adds no training time
    return tracker.summary("Keras example", models.count_params(model), round(tracker.images / len(x), 2), len(x))


def table(rows: list[dict]) -> str:
    """The results as a Markdown table."""
    lines = ["| network | parameters | epochs | seconds to 99.0% | stays ≥ 99.0% from | final test accuracy | "
             "training images/s |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def when(seconds: float | None, epochs: float | None) -> str:
        return "not reached" if seconds is None else f"{seconds:.1f} s (epoch {epochs:.2f})"

    for r in rows:
        reached, stays = when(r["seconds_to_99"], r["epochs_to_99"]), when(r["seconds_stays_99"], r["epochs_stays_99"])
        lines.append(f"| {r['name']} | {r['params']:,} | {r['epochs']:g} | {reached} | {stays} | "
                     f"{r['final_acc']:.2%} | {r['images_per_second']:,.0f} |")
    return "\n".join(lines)


def speedups(course: dict, rows: list[dict]) -> str:
    """How many times sooner than the faster reference network the course row reaches 99.0% and stays there."""
    words = []
    for key, what in (("seconds_to_99", "reaches 99.0%"), ("seconds_stays_99", "stays at or above 99.0%")):
        refs = [r[key] for r in rows if not r["name"].startswith("course") and r[key] is not None]
        if refs and course[key]:
            words.append(f"{what} {min(refs) / course[key]:.1f}x sooner than the faster reference")
    return "; ".join(words) or "no reference reached 99.0% (or the course CNN did not)"


def main() -> int:
    """Run the networks one after another and print (and save) the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a one-minute smoke run on a tiny budget")
    parser.add_argument("--pytorch-epochs", type=int, default=14, help="epochs of the PyTorch example (its own: 14)")
    parser.add_argument("--keras-epochs", type=int, default=15, help="epochs of the Keras example (its own: 15)")
    parser.add_argument("--evals", type=int, default=20, help="test-accuracy measurements per epoch (default 20)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these: course fast pytorch keras")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    (x, y), test = helpers.load_mnist(progress=False)
    if args.quick:  # 6,000 images, 1 epoch each, 5 measurements: checks the machinery, not the speed
        x, y = helpers.subset(x, y, 6000)
        test = helpers.subset(*test, 2000)
    data = ((x, y), test)
    evals = 5 if args.quick else args.evals
    course_epochs = 1 if args.quick else models.PRETRAINED_RECIPE["epochs"]
    torch_epochs, keras_epochs = (1, 1) if args.quick else (args.pytorch_epochs, args.keras_epochs)
    import torch

    print(f"benchmark on {platform.machine()} with {torch.get_num_threads()} PyTorch threads · torch "
          f"{torch.__version__} · {'quick' if args.quick else 'full'} run · test accuracy every 1/{evals} epoch, "
          "evaluation time excluded", flush=True)
    runs = [("course", course_cnn, course_epochs),
            ("fast", partial(course_cnn, recipe=models.FAST_RECIPE, name="course CNN, fast recipe (EMA)"),
             course_epochs),
            ("pytorch", pytorch_example, torch_epochs), ("keras", keras_example, keras_epochs)]
    rows = []
    for key, fn, epochs in runs:
        if args.only and key not in args.only:
            continue
        start = time.perf_counter()
        rows.append(fn(data, epochs, evals, None))
        r = rows[-1]
        print(f"  {r['name']}: final {r['final_acc']:.2%}, 99.0% after {r['seconds_to_99'] or float('nan'):.0f} s, "
              f"{r['images_per_second']:,.0f} images/s ({time.perf_counter() - start:.0f} s with evaluation)",
              flush=True)
    print()
    print(table(rows))
    print()
    for course in (r for r in rows if r["name"].startswith("course")):
        print(f"{course['name']} (ends at {course['final_acc']:.2%}): {speedups(course, rows)}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
