"""environment.yml and requirements.txt pin exactly the same packages, and this environment has those pins."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def pip_lines(lines: list[str]) -> dict[str, Requirement]:
    """Requirement lines (not options or the editable project) keyed by name and marker."""
    reqs = {}
    for line in lines:
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        req = Requirement(line)
        reqs[f"{req.name.lower()}; {req.marker}"] = req
    return reqs


def requirements() -> dict[str, Requirement]:
    return pip_lines((ROOT / "requirements.txt").read_text().splitlines())


def conda_env() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_every_requirement_is_pinned_exactly():
    reqs = requirements()
    assert len(reqs) >= 20
    for req in reqs.values():
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{req} is not pinned with =="


def test_environment_yml_says_exactly_what_requirements_txt_says():
    env = conda_env()
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e ." in pip_section
    ours, theirs = pip_lines(pip_section), requirements()
    assert {k: str(v) for k, v in ours.items()} == {k: str(v) for k, v in theirs.items()}


def test_tensorflow_markers_cover_each_platform_once():
    tf = [r for r in requirements().values() if r.name in ("tensorflow", "tensorflow-cpu")]
    for platform, machine in [("linux", "x86_64"), ("linux", "aarch64"), ("win32", "AMD64"), ("darwin", "arm64")]:
        env = {"sys_platform": platform, "platform_machine": machine}
        assert sum(r.marker.evaluate(env) for r in tf) == 1, f"{platform}/{machine}"


def test_this_environment_matches_the_pins():
    wrong = []
    for req in requirements().values():
        if req.marker and not req.marker.evaluate():
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            wrong.append(f"{req.name} is not installed")
            continue
        if not req.specifier.contains(installed.split("+")[0], prereleases=True):
            wrong.append(f"{req.name} {installed} (pinned {req.specifier})")
    if wrong:
        pytest.fail("the environment differs from requirements.txt (run `make setup`): " + "; ".join(wrong))
