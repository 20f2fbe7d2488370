"""The import contract (pyproject.toml, `lint-imports`) holds the layers and catches a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.shared_data import REPO

PACKAGES = ("iotml", "bridge", "processor", "models", "dashboard")


def _copy_tree(dst: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    return dst


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [lint, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_tree_keeps_its_layers(tmp_path):
    result = _lint_imports(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_core_module_importing_a_service_breaks_the_contract(tmp_path):
    root = _copy_tree(tmp_path)
    records = root / "iotml" / "core" / "records.py"
    records.write_text(records.read_text() + "\nimport bridge  # noqa: E402,F401\n")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "iotml.core.records -> bridge" in result.stdout
