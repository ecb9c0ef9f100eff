"""Where the project's non-Python parts live (templates, C runtime, boards).

In a source checkout (and an editable install) they are the top-level
folders ``templates/``, ``runtime_c/`` and ``boards/``. A wheel carries them
inside the package as ``edgegen/_data/<folder>`` (see pyproject.toml), so an
installed edgegen finds them there first.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
_INSTALLED_DATA = PACKAGE_DIR / "_data"


def _data_folder(name: str) -> Path:
    installed = _INSTALLED_DATA / name
    return installed if installed.is_dir() else PROJECT_ROOT / name


RUNTIME_DIR = _data_folder("runtime_c")
TEMPLATES_DIR = _data_folder("templates")
BOARDS_DIR = _data_folder("boards")
RUNTIME_HEADER = RUNTIME_DIR / "eg_runtime.h"
