"""`latentgeo.__version__` is the installed distribution's version."""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import latentgeo as lg

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_installed_metadata():
    assert lg.__version__ == importlib.metadata.version("latentgeo")
    # tomllib is Python 3.11+; the project's version line is simple enough.
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    assert declared is not None and lg.__version__ == declared.group(1)


def test_version_without_an_installed_distribution():
    # Hide latentgeo's installed metadata, as for a source tree that was never
    # installed; other packages keep theirs.
    script = (
        "import importlib.metadata as m\n"
        "found = m.version\n"
        "def version(name):\n"
        "    if name == 'latentgeo': raise m.PackageNotFoundError(name)\n"
        "    return found(name)\n"
        "m.version = version\n"
        "import latentgeo\n"
        "print(latentgeo.__version__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(ROOT / "src"), "JAX_PLATFORMS": "cpu", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.fullmatch(r"0\+unknown\n", done.stdout)
