"""Jobs: what the CLI and the Python API call. Each sequences stages and
writes one output folder (atomically, see ``edgegen.output_folder``).

    deploy          float model -> quantized, generated, host-verified C folder
                    (and the firmware for a board, verified under QEMU)
    quantize        import and quantize a model with its data set's samples
    lower           QGraph + storage choice -> storage plan, memory plan, C sources
    compress        prune, share, fine-tune, measure -> compressed.npz and report
    firmware_build  QGraph -> firmware folder for a board, cross-built, budget-checked
    board_verify    a built firmware folder run under QEMU, byte for byte

Jobs may import stages and each other; no stage imports a job
(tests/test_package_structure.py checks it).
"""
