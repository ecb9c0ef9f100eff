"""Exit codes of edgegen's firmware images, shared with the Python side.

``folder`` writes them into board/eg_board.h; ``qemu`` and ``harness``
read a run's exit status with them.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of the firmware images (emitted into board/eg_board.h).
    Above 9, apart from QEMU's own failure statuses."""

    OK = 0
    FAULT = 10
    NO_INPUT = 11
    BAD_INPUT = 12
    INVOKE_FAILED = 13
    WRITE_FAILED = 14
    SELFTEST_FAILED = 15


EXIT_MEANINGS = {
    ExitCode.FAULT: "the firmware crashed (a fault or exception: bad memory access, "
                    "undefined instruction, stack overflow)",
    ExitCode.NO_INPUT: "the harness could not open input.bin through semihosting",
    ExitCode.BAD_INPUT: "the harness read a truncated input.bin",
    ExitCode.INVOKE_FAILED: "the model's invoke function returned an error",
    ExitCode.WRITE_FAILED: "the harness could not write output.bin through semihosting",
    ExitCode.SELFTEST_FAILED: "the self-test found a mismatch",
}
