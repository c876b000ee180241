"""scripts/bench.py: when a run first reaches and stays at 99.0%, the speed-up line, and the fast recipe's loop."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import torch
from test_train import fake_data

from helpers import count_params, recipes

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


TEN = torch.nn.Linear(4, 2)  # a "model" with 10 parameters, for the summary's count


def tracked(accuracies: list[float]) -> bench.Tracker:
    """A tracker that measured these accuracies at 1, 2, 3 ... seconds, every 6,000 images."""
    tracker = bench.Tracker(evaluate=lambda model: 0.0, every=1)
    tracker.points = [(float(i), 6000 * i, acc) for i, acc in enumerate(accuracies, 1)]
    tracker.seconds, tracker.images = tracker.points[-1][:2]
    return tracker


def test_reaching_and_staying_at_the_target():
    row = tracked([0.95, 0.991, 0.985, 0.992, 0.993]).summary("course CNN", TEN, 0.5)
    assert (row["seconds_to_99"], row["epochs_to_99"]) == (2.0, 0.2)  # first touch
    assert (row["seconds_stays_99"], row["epochs_stays_99"]) == (4.0, 0.4)  # no later dip below 99.0%
    assert row["final_acc"] == 0.993 and row["best_acc"] == 0.993 and row["images_per_second"] == 6000
    never = tracked([0.95, 0.991, 0.98]).summary("Keras example", TEN, 0.3)
    assert never["seconds_to_99"] == 2.0 and never["seconds_stays_99"] is None


def test_seeds_are_summarised_as_median_and_range():
    runs = [tracked(acc).summary("course CNN", TEN, 0.5) for acc in
            ([0.95, 0.991, 0.992], [0.991, 0.992, 0.993], [0.95, 0.96, 0.991])]
    row = bench.summarise(runs)
    assert row["seeds"] == 3 and row["seconds_to_99"] == (2.0, 1.0, 3.0) and row["epochs_to_99"][0] == 0.2
    assert row["final_acc"] == (0.992, 0.991, 0.993)
    table = bench.table([row])
    assert "| course CNN | 10 | 0.5 | 3 | 2.0 (1.0–3.0) | 0.20 (0.10–0.30) |" in table
    missed = bench.summarise(runs[:2] + [tracked([0.95, 0.96, 0.97]).summary("course CNN", TEN, 0.5)])
    assert missed["seconds_to_99"] is None and "not reached by 1 of 3" in bench.table([missed])
    reference = bench.summarise([tracked([0.98, 0.99, 0.995, 0.996]).summary("Keras example", TEN, 1)] * 3)
    line = bench.speedups(row, [row, reference])
    assert line.startswith("reaches 99.0% 1.0x sooner than the faster reference")


def test_images_after_counts_the_smaller_last_batch():
    assert [bench.images_after(step, 100, 32) for step in (1, 3, 4, 5, 8)] == [32, 96, 100, 132, 200]


def test_fast_recipe_trains_and_reports_the_moving_average():
    x, y = fake_data(512)
    data = ((x, y), fake_data(256, seed=1))
    recipe = replace(recipes.FAST, width=4)
    row = bench.course_cnn(data, epochs=3, evals=2, seed=1, recipe=recipe, name="course CNN, fast")
    assert row["epochs"] == 3 and len(row["points"]) == 3 * 2
    assert row["final_acc"] > 0.5  # the patch-coded labels are learnt (chance: 0.1)
    assert row["images_per_second"] > 0 and row["params"] == count_params(recipe.build())


def test_pytorch_example_steps_its_scheduler_per_epoch():
    x, y = fake_data(256)
    row = bench.pytorch_example(((x, y), fake_data(64, seed=1)), epochs=2, evals=2)
    assert row["epochs"] == 2 and row["params"] == 1_199_882 and len(row["points"]) == 2 * 2


def test_choose_recipe_scores_the_epoch_from_which_validation_accuracy_stays():
    spec = importlib.util.spec_from_file_location("choose_recipe", ROOT / "scripts" / "choose_recipe.py")
    choose = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(choose)
    assert choose.stays_from([(0.1, 0.98), (0.2, 0.991), (0.3, 0.989), (0.4, 0.99), (0.5, 0.995)]) == 0.4
    assert choose.stays_from([(0.1, 0.991), (0.2, 0.98)]) is None
