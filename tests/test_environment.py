"""environment.yml and requirements.txt pin exactly the same packages, and this environment has those pins."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers.envcheck import pip_lines, read_pins, version_rows

ROOT = Path(__file__).resolve().parent.parent


def requirements():
    return read_pins(ROOT / "requirements.txt")


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
    wrong = [f"{name} {installed} (pinned {pinned})" for name, pinned, installed, status in version_rows(requirements())
             if status != "ok"]
    if wrong:
        pytest.fail("the environment differs from requirements.txt (run `make setup`): " + "; ".join(wrong))
