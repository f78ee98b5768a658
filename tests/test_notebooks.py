"""The example notebooks: committed without outputs, and they run top to bottom.

Running them takes a few minutes, so those tests are marked `slow` and
`notebooks` and run only on request: `pytest -m notebooks` (needs the
`notebooks` extra: nbclient, nbformat and ipykernel, which `nbmake` brings;
`pytest --nbmake examples/*.ipynb` runs them too).
"""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    assert [path.name for path in NOTEBOOKS] == [
        "circle.ipynb",
        "digits.ipynb",
        "geometry.ipynb",
    ]
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [], f"{path.name}: clear the outputs"
                assert cell["execution_count"] is None, f"{path.name}: clear counts"


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # The kernel imports latentgeo from this working tree, installed or not.
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell
