"""The lock CI installs from pins every package with hashes, within pyproject's bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, tuple[str, list[str]]]:
    """Return {name: (version, hashes)} from requirements.lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", line)
        if pin:
            current = _normal(pin.group(1))
            pins[current] = (pin.group(2), [])
        elif current and (digest := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            pins[current][1].append(digest.group(1))
    return pins


def test_every_locked_package_is_pinned_with_hashes():
    pins = _locked()
    assert len(pins) > 40
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []


def test_the_lock_holds_every_dependency_within_its_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["test"]]
    pins = _locked()
    outside = {
        req.name: pins[_normal(req.name)][0]
        for req in wanted
        if _normal(req.name) in pins and pins[_normal(req.name)][0] not in req.specifier
    }
    assert outside == {}
    # The security work's own additions are locked (CI warns about any other missing one).
    for name in ("flask-talisman", "zxcvbn", "waitress", "flask-login"):
        assert name in pins, name
