"""`make setup`'s choice of interpreter, and pins that every Python 3.11 it may choose can install.

The Makefile takes the first of ``PYTHON_CANDIDATES`` that is Python 3.11 and can make a venv (the distribution's
build first: Debian 12's ``/usr/bin/python3.11`` is 3.11.2). A pin whose package asks for a later 3.11 release
would make ``make setup`` fail there, so the installed pins are checked against 3.11.2.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
#: The oldest Python 3.11 `make setup` meets on a supported machine: Debian 12's python3.11.
OLDEST_311 = "3.11.2"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)", re.M)


def _make(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``make`` on a copy of the Makefile in ``tmp_path`` (empty requirement files beside it)."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("requirements.txt", "requirements-dev.txt", "pyproject.toml"):
        (tmp_path / name).touch()
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _without_ensurepip(tmp_path: Path) -> Path:
    """A Python 3.11 whose ``ensurepip`` cannot be imported, as Debian's without its python3.11-venv package."""
    stub = tmp_path / "no-venv"
    stub.mkdir()
    (stub / "ensurepip.py").write_text("raise ImportError('python3.11-venv is not installed')\n")
    wrapper = tmp_path / "python3.11-no-venv"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={stub} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _python_of(tmp_path: Path, candidates: list[str]) -> str:
    done = _make(tmp_path, f"PYTHON_CANDIDATES={' '.join(candidates)}", "--eval=which: ; @echo '[$(PYTHON)]'", "which")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_setup_takes_the_first_python_3_11_that_can_make_a_venv(tmp_path: Path) -> None:
    no_venv = _without_ensurepip(tmp_path)
    missing = tmp_path / "python3.11-missing"
    assert _python_of(tmp_path, [str(missing), str(no_venv), sys.executable]) == f"[{sys.executable}]"
    # The wrapper itself is a working Python 3.11: it is passed over only for the missing venv module.
    assert subprocess.run([str(no_venv), "-c", "import sys"], check=False).returncode == 0
    assert _python_of(tmp_path, [str(missing), str(no_venv)]) == "[]"
    # An explicit PYTHON wins over the candidates.
    done = _make(tmp_path, f"PYTHON={no_venv}", "--eval=which: ; @echo '[$(PYTHON)]'", "which")
    assert done.stdout.strip() == f"[{no_venv}]"


def test_setup_without_a_usable_python_says_what_to_install(tmp_path: Path) -> None:
    done = _make(tmp_path, f"PYTHON_CANDIDATES={_without_ensurepip(tmp_path)}", ".venv/.installed")
    assert done.returncode != 0
    assert "kepu needs Python 3.11 with its venv module" in done.stderr and "python3.11-venv" in done.stderr
    assert not (tmp_path / ".venv").exists()


def test_every_pinned_package_installs_on_the_oldest_python_3_11_setup_may_choose() -> None:
    pins: dict[str, str] = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        pins.update(_PIN.findall((ROOT / name).read_text(encoding="utf-8")))
    assert len(pins) > 100, "the pinned requirements were not read"
    refused = []
    for name, version in pins.items():
        dist = distribution(name)
        assert dist.version == version, (name, dist.version, version)
        wanted = next(iter(dist.metadata.get_all("Requires-Python") or []), None)
        if wanted and not SpecifierSet(wanted).contains(OLDEST_311):
            refused.append(f"{name}=={version} (Requires-Python {wanted})")
    assert not refused, f"pins that Python {OLDEST_311} cannot install: {refused}"
