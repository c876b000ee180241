"""Models trained once, then loaded: the course's cache in data/models/, for any framework.

    model, record = cached(name, key, build, fit, save, load, suffix=".pt")
    results = cached_results(name, key, compute)   # numbers only, for experiments whose models nothing needs

The file name carries a hash of `key` (everything that decides the weights); the .json record beside it holds the
key, what `fit` returned and the file's SHA-256. A missing, truncated or altered file, or another key, means the
model is trained again. Every file is written atomically, so an interrupted run never leaves half a model behind.
PyTorch models use helpers.recipes.cached_model, Keras models helpers.keras_models.cached_keras.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .core import atomic_file, data_dir


def key_hash(key: dict) -> str:
    """Ten hex digits that change whenever anything in `key` changes."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def source_hash(*objects: Any) -> str:
    """Ten hex digits of the source code of functions and classes: put it in a key so that edits retrain."""
    return hashlib.sha256("".join(_source(o) for o in objects).encode()).hexdigest()[:10]


def _source(obj: Any) -> str:
    """inspect.getsource, and for a class defined in a notebook (no file to read it from) its methods' sources."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        if not inspect.isclass(obj):
            raise
        methods = [_source(v) for v in vars(obj).values() if inspect.isfunction(v)]
        return f"class {obj.__qualname__}({', '.join(b.__qualname__ for b in obj.__bases__)}):\n" + "".join(methods)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_path(name: str, key: dict, suffix: str) -> Path:
    """Where `cached` keeps a model: data/models/NAME-<key hash><suffix> (its record: the same name, .json)."""
    return data_dir() / "models" / f"{name}-{key_hash(key)}{suffix}"


def copy_atomically(source: Path, target: Path) -> None:
    """Copy a file so that `target` is either the old file or the whole new one, never half of it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _load_cached(path: Path, key: dict, keep: Sequence[Path], load: Callable[[Path], Any]) -> tuple[Any, dict]:
    """The cached model and its record; ValueError if the record, a checksum or the key does not match."""
    record = json.loads(path.with_suffix(".json").read_text())
    if record["key"] != json.loads(json.dumps(key)) or record["sha256"] != file_sha256(path):
        raise ValueError("checksum or key mismatch")
    for kept in keep:  # files the training wrote beside the model (e.g. a checkpoint): put back where expected
        copy = path.with_name(f"{path.stem}.{kept.name}")
        if record["kept"].get(kept.name) != file_sha256(copy):
            raise ValueError(f"checksum mismatch of {copy.name}")
        if not kept.exists() or file_sha256(kept) != record["kept"][kept.name]:
            copy_atomically(copy, kept)
    return load(path), record


def cached(name: str, key: dict, build: Callable[[], Any], fit: Callable[[Any], dict],
           save: Callable[[Any, Path], None], load: Callable[[Path], Any], suffix: str, retrain: bool = False,
           keep: Sequence[Path] = ()) -> tuple[Any, dict]:
    """A model trained once by `fit(build())`, then loaded; `keep`: files the training writes that are cached too."""
    path = cache_path(name, key, suffix)
    if not retrain and path.exists():
        try:
            return _load_cached(path, key, keep, load)
        except Exception as err:  # corrupt, foreign or stale: train again
            print(f"{path.name}: cached model unusable ({type(err).__name__}: {err}); training it again")
    model = build()
    results = fit(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, path)
    kept = {}
    for file in keep:
        copy_atomically(Path(file), path.with_name(f"{path.stem}.{Path(file).name}"))
        kept[Path(file).name] = file_sha256(file)
    record = {"key": key, **results, "sha256": file_sha256(path), **({"kept": kept} if keep else {})}
    with atomic_file(path.with_suffix(".json")) as out:
        out.write(json.dumps(record, indent=2).encode())
    return model, record


def cached_results(name: str, key: dict, compute: Callable[[], dict]) -> dict:
    """An experiment's results (a JSON-able dict) computed once by `compute()`, then read back.

    They live in data/models/NAME-<key hash>.results.json beside the key; an unreadable file or another key means
    `compute()` runs again. For experiments whose models nothing later needs, only their numbers.
    """
    path = cache_path(name, key, ".results.json")
    if path.exists():
        try:
            record = json.loads(path.read_text())
            if record["key"] != json.loads(json.dumps(key)):
                raise ValueError("key mismatch")
            return record["results"]
        except (ValueError, KeyError, TypeError) as err:  # truncated, edited or foreign: compute again
            print(f"{path.name}: cached results unusable ({type(err).__name__}: {err}); computing them again")
    results = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as out:
        out.write(json.dumps({"key": key, "results": results}, indent=2).encode())
    return results
