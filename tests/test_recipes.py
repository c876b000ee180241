"""helpers.recipes: every Recipe field is read, train_recipe is deterministic and averages weights when asked, and the
model cache trains once, verifies its file and retrains when the file, the recipe or the code changes."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from dataclasses import fields, replace

import pytest
import torch
from test_train import fake_data
from torch import nn

from helpers import cache, recipes, train

TINY = replace(recipes.CHAPTER8, epochs=2, width=4, batch_size=64)


def test_every_recipe_field_is_read_by_the_code():
    trees = [ast.parse(textwrap.dedent(inspect.getsource(f))) for f in (recipes.train_recipe, recipes.Recipe.build)]
    read = {node.attr for tree in trees for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in
            ("recipe", "self")}
    assert {f.name for f in fields(recipes.Recipe)} <= read


def test_train_recipe_is_deterministic_and_learns():
    x, y = fake_data(256)
    first, second = TINY.build(), TINY.build()
    history = recipes.train_recipe(first, TINY, (x, y), progress=False)
    recipes.train_recipe(second, TINY, (x, y), progress=False)
    assert history.epoch == [1, 2] and history.loss[-1] < history.loss[0]
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                 strict=True))


def test_ema_recipe_ends_with_the_averaged_weights_and_shows_them_to_the_callback():
    x, y = fake_data(256)
    recipe = replace(TINY, ema=0.9)
    seen = []
    model = recipe.build()
    recipes.train_recipe(model, recipe, (x, y), callback=lambda step, net: seen.append((step, net)),
                         progress=False)
    steps = [s for s, _ in seen]
    assert steps == list(range(1, 2 * 4 + 1))  # 256 images / 64 per batch, 2 epochs
    averaged = seen[-1][1]
    assert averaged is not model and all(torch.equal(a, b) for a, b in zip(
        model.state_dict().values(), averaged.state_dict().values(), strict=True))


def test_the_cached_record_keeps_the_validation_curve_and_one_test(monkeypatch):
    x, y = fake_data(512)
    record = recipes._train_and_test(TINY.build(), TINY, (x[:384], y[:384]), (x[448:], y[448:]), False,
                                     (x[384:448], y[384:448]))
    h = record["history"]
    assert h["epoch"] == [1, 2] and len(h["val_accuracy"]) == 2 and len(h["loss"]) == 2
    assert record["train_images"] == 384 and 0 <= record["test_accuracy"] <= 1


def test_code_version_changes_when_the_training_code_changes(monkeypatch):
    before = recipes.code_version()

    def another_fit(*args, **kwargs):  # different source, same name
        return None

    monkeypatch.setattr(train, "fit", another_fit)
    assert recipes.code_version() != before


def test_cached_model_trains_once_and_retrains_a_corrupt_or_stale_cache(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    calls = []

    def fit(model):
        calls.append(1)
        with torch.no_grad():
            model.weight.fill_(len(calls))
        return {"score": len(calls)}

    def build():
        return nn.Linear(3, 2)

    model, record = recipes.cached_model("toy", {"lr": 1}, build, fit)
    assert record["score"] == 1 and len(calls) == 1 and not model.training
    again, record = recipes.cached_model("toy", {"lr": 1}, build, fit)
    assert len(calls) == 1 and torch.equal(again.weight, model.weight) and record["score"] == 1
    (path,) = (tmp_path / "models").glob("toy-*.pt")
    path.write_bytes(path.read_bytes()[:-7])  # truncated: the checksum no longer matches
    _, record = recipes.cached_model("toy", {"lr": 1}, build, fit)
    assert len(calls) == 2 and record["score"] == 2 and "training it again" in capsys.readouterr().out
    recipes.cached_model("toy", {"lr": 2}, build, fit)  # another key is another file
    assert len(calls) == 3 and len(list((tmp_path / "models").glob("toy-*.pt"))) == 2
    assert not list((tmp_path / "models").glob("*.part"))


@pytest.fixture
def tiny_pretrained(monkeypatch, tmp_path):
    """pretrained_cnn with instant 'training' (the seeded, untrained CNN); records the epochs it was asked for."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    calls = []

    def fake(model, recipe, train_data, test_data, progress, val_data=None):
        calls.append(recipe.epochs)
        assert len(train_data[1]) + len(val_data[1]) == 6000  # the validation images are held out
        return {"test_accuracy": 0.1}

    x, y = fake_data(6000)
    monkeypatch.setattr(recipes, "_train_and_test", fake)
    monkeypatch.setattr(recipes, "load_mnist", lambda progress=True: ((x, y), (x[:10], y[:10])))
    return calls


def test_pretrained_cnn_is_cached_verified_and_retrained_when_corrupt(tiny_pretrained, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "full")
    first, record = recipes.pretrained_cnn(progress=False)
    path = recipes.cached_path("ch08_cnn", record["key"])
    assert path.exists() and len(record["sha256"]) == 64 and tiny_pretrained == [15]
    assert record["key"]["recipe"]["epochs"] == 15 and record["key"]["code"] == recipes.code_version()
    second, _ = recipes.pretrained_cnn(progress=False)  # from the cache: no training
    assert tiny_pretrained == [15] and not second.training
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                 strict=True))
    path.write_bytes(path.read_bytes()[:1000])  # truncate: checksum mismatch -> retrain, never use
    recipes.pretrained_cnn(progress=False)
    assert tiny_pretrained == [15, 15]
    record = json.loads(path.with_suffix(".json").read_text())
    torch.save({"features.0.0.weight": torch.zeros(3)}, path)  # right checksum in the record, wrong shapes
    record["sha256"] = cache.file_sha256(path)
    path.with_suffix(".json").write_text(json.dumps(record))
    recipes.pretrained_cnn(progress=False)
    assert tiny_pretrained == [15, 15, 15]
    assert not list(path.parent.glob("*.part"))  # atomic writes leave no temporary files


def test_quick_mode_trains_a_short_recipe_unless_the_full_model_is_cached(tiny_pretrained, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    _, record = recipes.pretrained_cnn(progress=False)
    assert tiny_pretrained == [2] and record["key"]["recipe"]["epochs"] == 2
    monkeypatch.setenv("COURSE_MODE", "full")
    recipes.pretrained_cnn(progress=False)
    monkeypatch.setenv("COURSE_MODE", "quick")
    _, record = recipes.pretrained_cnn(progress=False)  # the full model is cached now: quick mode uses it
    assert tiny_pretrained == [2, 15] and record["key"]["recipe"]["epochs"] == 15


def test_constant_schedule_keeps_the_peak_rate_and_a_wrong_name_is_refused():
    x, y = fake_data(128)
    history = recipes.train_recipe(TINY.build(), replace(TINY, schedule="constant"), (x, y), progress=False)
    assert history.lr == pytest.approx([TINY.max_lr] * 2)
    with pytest.raises(ValueError, match="schedule"):
        recipes.train_recipe(TINY.build(), replace(TINY, schedule="cosine"), (x, y), progress=False)


def test_cached_results_compute_once_and_again_when_damaged_or_another_key(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"accuracy": 0.5 + len(calls), "seconds": [1.0, 2.0]}

    first = cache.cached_results("toy", {"seed": 0}, compute)
    assert cache.cached_results("toy", {"seed": 0}, compute) == first and len(calls) == 1
    (path,) = (tmp_path / "models").glob("toy-*.results.json")
    path.write_text(path.read_text()[:-5])  # truncated: not JSON any more
    assert cache.cached_results("toy", {"seed": 0}, compute)["accuracy"] == 2.5 and len(calls) == 2
    assert "computing them again" in capsys.readouterr().out
    cache.cached_results("toy", {"seed": 1}, compute)  # another key is another file
    assert len(calls) == 3 and len(list((tmp_path / "models").glob("toy-*.results.json"))) == 2


def test_source_hash_of_a_class_defined_in_a_notebook_changes_with_its_methods():
    """A notebook's classes have no file that inspect can read: their methods' sources are hashed instead."""
    import linecache
    import types

    def define(body: str) -> type:
        name = f"<cell {abs(hash(body))}>"
        source = f"class Layer:\n    def forward(self, x):\n        return {body}\n"
        linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
        module = types.ModuleType("notebook_cell")  # like __main__ in a kernel: no __file__
        exec(compile(source, name, "exec"), module.__dict__)
        return module.Layer

    first, same, other = define("x * 2"), define("x * 2"), define("x * 3")
    assert cache.source_hash(first) == cache.source_hash(same) != cache.source_hash(other)
