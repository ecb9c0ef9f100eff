"""Where the project's non-Python parts live (templates, C runtime)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = PROJECT_ROOT / "runtime_c"
TEMPLATES_DIR = PROJECT_ROOT / "templates"
RUNTIME_HEADER = RUNTIME_DIR / "eg_runtime.h"
