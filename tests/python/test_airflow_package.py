"""deploy/airflow is pip-installable with no Rust and no network: build its wheel in the Airflow
venv, install it into an empty directory, and import it from there (typed: py.typed shipped)."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "deploy" / "airflow"

pytestmark = pytest.mark.skipif(
    not os.environ.get("LANDFALL_AIRFLOW_PYTHON"),
    reason="needs LANDFALL_AIRFLOW_PYTHON (scripts/ensure-tools.sh; scripts/test.sh sets it)",
)


def test_package_builds_installs_and_imports(tmp_path: Path) -> None:
    py = os.environ["LANDFALL_AIRFLOW_PYTHON"]
    pip = [py, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels, target, src = tmp_path / "wheels", tmp_path / "site", tmp_path / "src"
    # A copy: an in-tree build would leave build/ and *.egg-info in the repository.
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    r = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = wheels.glob("landfall_airflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "landfall_airflow/py.typed" in names
    assert "landfall_airflow/sensors.py" in names
    r = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    code = (
        "import landfall_airflow, landfall_airflow.sensors, landfall_airflow.kafka, "
        "landfall_airflow.windows; print(landfall_airflow.__file__)"
    )
    r = subprocess.run(
        [py, "-c", code], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().startswith(str(target))
    print(f"built {wheel.name} ({wheel.stat().st_size} bytes), imported from {target}")
