"""Speed benchmark: the course CNN against the official PyTorch and Keras MNIST examples, on this machine.

    python scripts/bench.py                      # full: all 60,000 images, each example's own epochs (~20 min)
    python scripts/bench.py --pytorch-epochs 5   # stop the slowest network (the PyTorch example) after 5 epochs
    python scripts/bench.py --quick              # a one-minute smoke run (6,000 images, 1 epoch; not comparable)
    python scripts/bench.py --course-warmup 0.25 0.05   # the course CNN with two warm-up lengths

For each network: parameters, epochs run, training seconds until test accuracy first reaches 99.0%, final test
accuracy and training images per second. Test accuracy (all 10,000 test images) is measured every tenth of an
epoch; the training clock is stopped while it is measured, so the times are training time only.

- course CNN: helpers.models.torch_cnn (channels-last), AdamW + OneCycle, batch 128, augmentation, label smoothing
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

    def summary(self, name: str, params: int, epochs: float) -> dict:
        if not self.points or self.points[-1][1] != self.images:
            self.measure()
        reached = next(((s, n) for s, n, acc in self.points if acc >= TARGET), None)
        return {"name": name, "params": params, "epochs": epochs, "seconds_to_99": reached and reached[0],
                "epochs_to_99": reached and reached[1] / 60_000, "final_acc": self.points[-1][2],
                "best_acc": max(p[2] for p in self.points), "train_seconds": self.seconds,
                "images_per_second": self.images / self.seconds, "points": self.points}


def run_torch(name, model, optimizer, scheduler, per_batch: bool, epochs: int, batch_size: int, data, evals: int,
              budget: int | None, augment=None, label_smoothing: float = 0.0) -> dict:
    """Train a PyTorch model with a plain loop (the examples' loop), tracking test accuracy."""
    import torch
    import torch.nn.functional as F

    (x, y), (x_test, y_test) = data
    loader = helpers.torch_loader(x, y, batch_size=batch_size, shuffle=True, seed=0)
    test_images = torch.from_numpy(helpers.normalize(x_test)).unsqueeze(1)
    labels = torch.from_numpy(y_test.astype(np.int64))

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            correct = sum((model(xb).argmax(1) == yb).sum().item()
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
            if per_batch:
                scheduler.step()
            if done := tracker.step(len(yb)):
                break
        if not per_batch:
            scheduler.step()
        if done:
            break
    return tracker.summary(name, models.count_params(model), round(tracker.images / len(x), 2))


def course_cnn(data, epochs: int, evals: int, budget: int | None, warmup: float = 0.25) -> dict:
    """The course CNN with the Chapter 8 recipe; `warmup` is the one-cycle schedule's warm-up fraction."""
    import torch

    helpers.seed_everything(0)
    r = models.PRETRAINED_RECIPE
    model = models.torch_cnn(r["width"], r["dropout"]).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=r["max_lr"], weight_decay=r["weight_decay"])
    steps = -(-len(data[0][0]) // r["batch_size"])
    scheduler = train.one_cycle(optimizer, r["max_lr"], epochs, steps, pct_start=warmup)
    name = "course CNN (PyTorch)" + ("" if warmup == 0.25 else f", {warmup:.0%} warm-up")
    return run_torch(name, model, optimizer, scheduler, True, epochs, r["batch_size"], data, evals,
                     budget, augment=train.random_affine, label_smoothing=r["label_smoothing"])


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
    return tracker.summary("Keras example", models.count_params(model), round(tracker.images / len(x), 2))


def table(rows: list[dict]) -> str:
    """The results as a Markdown table."""
    lines = ["| network | parameters | epochs | seconds to 99.0% | final test accuracy | training images/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        reached = (f"{r['seconds_to_99']:.0f} s (epoch {r['epochs_to_99']:.1f})" if r["seconds_to_99"] is not None
                   else "not reached")
        lines.append(f"| {r['name']} | {r['params']:,} | {r['epochs']:g} | {reached} | {r['final_acc']:.2%} | "
                     f"{r['images_per_second']:,.0f} |")
    return "\n".join(lines)


def main() -> int:
    """Run the three networks one after another and print (and save) the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a one-minute smoke run on a tiny budget")
    parser.add_argument("--pytorch-epochs", type=int, default=14, help="epochs of the PyTorch example (its own: 14)")
    parser.add_argument("--keras-epochs", type=int, default=15, help="epochs of the Keras example (its own: 15)")
    parser.add_argument("--course-warmup", type=float, nargs="+", default=[0.25],
                        help="warm-up fraction(s) of the course CNN's one-cycle schedule (Chapter 8: 0.25)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these: course pytorch keras")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    (x, y), test = helpers.load_mnist(progress=False)
    if args.quick:  # 6,000 images, 1 epoch each, 5 measurements: checks the machinery, not the speed
        x, y = helpers.subset(x, y, 6000)
        test = helpers.subset(*test, 2000)
    data = ((x, y), test)
    evals = 5 if args.quick else 10
    course_epochs = 1 if args.quick else models.PRETRAINED_RECIPE["epochs"]
    torch_epochs, keras_epochs = (1, 1) if args.quick else (args.pytorch_epochs, args.keras_epochs)
    import torch

    print(f"benchmark on {platform.machine()} with {torch.get_num_threads()} PyTorch threads · torch "
          f"{torch.__version__} · {'quick' if args.quick else 'full'} run · test accuracy every 1/{evals} epoch, "
          "evaluation time excluded", flush=True)
    runs = [("course", partial(course_cnn, warmup=w), course_epochs) for w in args.course_warmup]
    runs += [("pytorch", pytorch_example, torch_epochs), ("keras", keras_example, keras_epochs)]
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
    refs = [r["seconds_to_99"] for r in rows if not r["name"].startswith("course") and r["seconds_to_99"]]
    for course in (r for r in rows if r["name"].startswith("course") and r["seconds_to_99"] and refs):
        print(f"\n{course['name']} reaches 99.0% {min(refs) / course['seconds_to_99']:.1f}x sooner than the faster "
              f"reference and ends at {course['final_acc']:.2%}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
