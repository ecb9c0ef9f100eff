"""Microcontroller firmware: everything between generated C and a board.

    boards       board files (boards/*.toml), read and validated
    folder       the self-contained firmware folder (sources, Makefile, CMake)
    cross        cross-compilation through the folder's Makefile, image sizes
    elf, stack   sizes and the stack estimate read from what was built
    budget       does the model fit the board? (and what to shrink if not)
    built        a built folder's record, the input of verification
    vectors      int8 input rows and their golden outputs
    qemu         running images under QEMU with a watchdog
    harness      the verification harness and the self-test under QEMU
    plugin       the QEMU instruction-count plugin and what it records
    exit_codes   the exit codes shared by the firmware images and Python

The jobs that sequence these (build a firmware folder, verify it on an
emulated board) are in ``edgegen.jobs``.
"""
