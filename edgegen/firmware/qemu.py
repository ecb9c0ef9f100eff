"""Running firmware images under QEMU, with a watchdog.

QEMU runs in a private working folder (semihosting lets the guest open host
files relative to it). Its console goes to files, never to pipes that a
chatty guest could fill and block. Two clocks guard every run: an overall
limit, and a stall limit on the progress file (the harness appends one
output vector per inference), so a hang is caught within seconds of the last
vector however many vectors were asked for.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegen import interrupts
from edgegen.errors import UserError
from edgegen.firmware.boards import Board
from edgegen.firmware.exit_codes import EXIT_MEANINGS, ExitCode
from edgegen.ir import QConv2D, QFullyConnected, QGraph

_POLL_SECONDS = 0.05
_CONSOLE_LINES = 12
# The slowest emulation speed assumed when deriving limits from an
# instruction estimate (QEMU with the counting plugin runs 100+ MIPS here).
SLOWEST_INSTRUCTIONS_PER_SECOND = 10e6
STARTUP_ALLOWANCE_SECONDS = 15.0
# Instructions per multiply-accumulate assumed for time limits only (the
# plain C kernels measure 6-15 at -Os): a generous upper bound.
_INSTRUCTIONS_PER_MAC = 40
_INSTRUCTIONS_PER_INFERENCE_FLOOR = 100_000


class FirmwareRunError(UserError):
    """The firmware crashed, hung, or produced output of the wrong shape."""


@dataclass(frozen=True)
class Timeouts:
    total: float  # seconds for the whole run
    stall: float  # seconds without progress (a new output vector)


def multiply_accumulates(qgraph: QGraph) -> int:
    """Multiply-accumulates of one dense inference (every weight position)."""
    return sum(layer_multiply_accumulates(qgraph).values())


def layer_multiply_accumulates(qgraph: QGraph) -> dict[str, int]:
    """Layer name -> its multiply-accumulates in a dense inference (every
    weight position); layers without weights have none."""
    macs = {}
    for node in qgraph.nodes:
        if isinstance(node.op, QConv2D):
            macs[node.name] = qgraph.tensor(node.output).size * int(np.prod(node.op.weight.shape[1:]))
        elif isinstance(node.op, QFullyConnected):
            macs[node.name] = int(node.op.weight.size)
        else:
            macs[node.name] = 0
    return macs


def estimate_instructions(qgraph: QGraph) -> int:
    """A generous upper bound of the instructions per inference (limits only)."""
    return max(_INSTRUCTIONS_PER_INFERENCE_FLOOR, _INSTRUCTIONS_PER_MAC * multiply_accumulates(qgraph))


def timeouts_for(instructions_per_vector: float, vectors: int) -> Timeouts:
    """Generous limits from an estimate of the work: a healthy run never
    comes near them, a hung one is stopped soon after it stalls."""
    per_vector = instructions_per_vector / SLOWEST_INSTRUCTIONS_PER_SECOND
    return Timeouts(total=STARTUP_ALLOWANCE_SECONDS + 2 * vectors * per_vector,
                    stall=STARTUP_ALLOWANCE_SECONDS + 2 * per_vector)


@dataclass(frozen=True)
class QemuRun:
    exit_code: int
    console: str  # stdout then stderr (QEMU 7.2 prints semihosting text on stderr)
    seconds: float


def require_qemu(board: Board) -> str:
    if board.qemu is None:
        raise UserError(f"board {board.name} is not emulated (its file has no [qemu] table): "
                        "it can be built and size-checked, and verified on the device with "
                        "its self-test")
    path = shutil.which(board.qemu.binary)
    if path is None:
        raise UserError(f"{board.qemu.binary} not found: install it (apt-get install "
                        f"{board.qemu.package}) to run firmware for {board.name}")
    return path


def qemu_command(board: Board, elf: Path, plugin: str | None = None) -> list[str]:
    """The QEMU command line for a bare-metal ``elf`` on ``board``."""
    return [require_qemu(board)] + qemu_arguments(board, elf, plugin)


def qemu_arguments(board: Board, elf: Path, plugin: str | None = None) -> list[str]:
    """QEMU's arguments (without the program) to run ``elf`` on ``board``."""
    command = ["-M", board.qemu.machine]
    if board.arch == "riscv":
        command += ["-bios", "none"]  # run our image, not OpenSBI
    # Without semihosting enabled, the first semihosting call locks the core.
    command += ["-nographic", "-monitor", "none",
                "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    if plugin is not None:
        command += ["-plugin", plugin]
    return command


def run_elf(board: Board, elf: Path, workdir: Path, timeouts: Timeouts, *,
            plugin: str | None = None, progress_file: Path | None = None) -> QemuRun:
    """Run ``elf`` in ``workdir`` until it exits; FirmwareRunError if it
    exceeds ``timeouts`` (the process is killed)."""
    workdir = Path(workdir)
    command = qemu_command(board, Path(elf).resolve(), plugin)
    stdout_path, stderr_path = workdir / "qemu.stdout", workdir / "qemu.stderr"
    start = time.perf_counter()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            problem = _watch(process, start, timeouts, progress_file)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    seconds = time.perf_counter() - start
    console = _read_console(stdout_path, stderr_path)
    if problem is not None:
        raise FirmwareRunError(f"{Path(elf).name} on {board.name}: {problem}; QEMU was stopped."
                               + _console_tail(console))
    return QemuRun(process.returncode, console, seconds)


def _watch(process: subprocess.Popen, start: float, timeouts: Timeouts,
           progress_file: Path | None) -> str | None:
    """Wait for ``process``; the reason to stop it, or None if it exited."""
    last_size, last_progress = -1, start
    while process.poll() is None:
        time.sleep(_POLL_SECONDS)
        interrupts.check()
        now = time.perf_counter()
        if progress_file is not None and progress_file.exists():
            size = progress_file.stat().st_size
            if size != last_size:
                last_size, last_progress = size, now
        if now - start > timeouts.total:
            return f"no exit within {timeouts.total:.0f} s (the time limit of this run)"
        if now - last_progress > timeouts.stall:
            done = "" if progress_file is None else f" after {max(last_size, 0)} output bytes"
            return (f"no progress for {timeouts.stall:.0f} s{done}: the firmware hangs "
                    "(or is far slower than expected)")
    return None


def _read_console(*paths: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in paths if p.exists())


def _console_tail(console: str) -> str:
    lines = [line for line in console.splitlines() if line.strip()]
    if not lines:
        return " It printed nothing."
    return "\nIts last output:\n  " + "\n  ".join(lines[-_CONSOLE_LINES:])


def check_exit(run: QemuRun, board: Board, elf: Path) -> None:
    """FirmwareRunError unless the image exited with ExitCode.OK."""
    if run.exit_code == ExitCode.OK:
        return
    try:
        meaning = EXIT_MEANINGS[ExitCode(run.exit_code)]
    except ValueError:
        meaning = "QEMU itself failed, or the firmware exited with an unknown code"
    raise FirmwareRunError(f"{Path(elf).name} on {board.name} exited with status {run.exit_code}: "
                           f"{meaning}." + _console_tail(run.console))
