"""Helpers of the robustness suite: run the CLI, check its promises."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edgegen.cli import main


def snapshot(folder: Path) -> dict:
    """Every file below ``folder`` with its bytes: what must not change."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".cache" not in p.parts}


@dataclass
class Outcome:
    status: int
    out: str
    err: str


def run_cli(capsys, argv) -> Outcome:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Outcome(status, captured.out, captured.err)


def run_process(argv, cwd, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "EDGEGEN_CACHE": str(Path(cwd) / ".cache")}
    return subprocess.Popen([sys.executable, "-m", "edgegen", *map(str, argv)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def assert_user_error(outcome: Outcome, *needles: str) -> None:
    """Exit status 2, one line naming the problem, no traceback."""
    assert outcome.status == 2, outcome.err
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("edgegen: error: "), outcome.err
    assert "Traceback" not in outcome.err
    for needle in needles:
        assert needle in outcome.err, outcome.err
