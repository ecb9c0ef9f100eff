"""Running an external tool (compiler, make, nm) so that Ctrl-C and SIGTERM stop it.

A blocking wait would see a signal only when the signal lands on the main
thread: one that lands on one of torch's worker threads leaves the main
thread waiting until the tool exits (a minute of cross-compilation, say).
``run_tool`` waits in short slices instead, so the CLI's handler runs at
once (and a signal whose exception was swallowed is raised again, see
``interrupts``); the tool and every process it started (make's compilers)
are then killed, and the exception goes on to the cleanups.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from edgegen import interrupts

_SLICE_SECONDS = 0.1


def run_tool(command: Sequence[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run(command, capture_output=True, text=True)``, interruptible.

    OSError (the program cannot be started) propagates to the caller."""
    # Its own process group, so that stopping it stops its children too.
    process = subprocess.Popen(list(command), cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        while True:
            try:
                out, err = process.communicate(timeout=_SLICE_SECONDS)
                break
            except subprocess.TimeoutExpired:
                interrupts.check()
    except BaseException:
        _kill_group(process)
        raise
    return subprocess.CompletedProcess(list(command), process.returncode, out, err)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()
