"""The ``edgegen`` command line.

Every subcommand is a thin layer over the Python API: parse, call, print.
Exit statuses mean one thing each:

    0  success
    1  verification mismatch: the C computed other bytes than the golden
       model, or misbehaved (non-zero return, a write outside its buffers)
    2  bad input or environment: one line naming the problem and the fix
       (argparse's usage errors too)
    3  internal error: a bug in edgegen, the one case with a traceback
    130, 143, 129  interrupted by SIGINT, SIGTERM, SIGHUP (nothing left behind)
"""

from __future__ import annotations

import argparse
import errno
import math
import shlex
import signal
import sys
import traceback
from pathlib import Path

from edgegen import __version__, interrupts
from edgegen.errors import Terminated, UserError, VerificationFailure

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


# The zoo's models as the help lists them (edgegen.zoo is imported only when
# a command runs, torch being slow to load; a test holds this to ZOO).
ZOO_NAMES = ("lenet300, lenet5, squeezenet, mobilenet, shufflenet, xception, resnet, "
             "kws_dscnn, ic_resnet8, vww_mobilenet, ad_autoencoder")


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", "--data-dir", dest="data", type=Path, default=None, metavar="PATH",
                   help="the model's data: a folder of MNIST-format IDX files (gzip or raw), an "
                        ".npz with x_train and x_test and optionally y_train, y_test, x_calib "
                        "(Keras' names), or an .npy of inputs; uint8 inputs are pixels (the "
                        "model sees pixel/255), other dtypes are used as they are. Default: "
                        "Fashion-MNIST from Debian's dataset-fashion-mnist; for the MLPerf Tiny "
                        "zoo models, random inputs of their shape (with random weights)")
    p.add_argument("--layout", choices=("nchw", "nhwc"), default=None,
                   help="how four-dimensional inputs are stored (default: inferred from the "
                        "model, which refuses an ambiguous case)")


def _add_train_step(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-step", default=None, metavar="MODULE:FUNCTION",
                   help="your loss instead of cross-entropy on the labels: FUNCTION(model, "
                        "inputs, labels) returns a scalar tensor to minimise (labels is None for "
                        "unlabelled data), e.g. an autoencoder's reconstruction error")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=f"a zoo model ({ZOO_NAMES}), module.path:factory, or a "
                                 "compressed model (.npz from `edgegen compress`)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="state_dict checkpoint (default for zoo models: the cached one, "
                        "trained first if there is none)")
    p.add_argument("--name", default=None,
                   help="C prefix of the generated API (default: the model name); a C identifier")
    p.add_argument("--factory", default=None, metavar="MODULE:FACTORY",
                   help="with a compressed .npz of your own model: the code to load its weights "
                        "into (edgegen never imports code named inside a file)")


def _add_quantize(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-samples", type=int, default=1000,
                   help="inputs (x_calib, else training inputs) used to calibrate activation "
                        "ranges (default 1000)")
    p.add_argument("--calibration", choices=("minmax", "percentile"), default="minmax")
    p.add_argument("--percentile", type=float, default=99.99,
                   help="with --calibration percentile: the upper percentile kept (default 99.99)")
    p.add_argument("--rounding", choices=("double", "single"), default="double",
                   help="requantization rounding: double (TFLite/CMSIS-NN default) or single")
    p.add_argument("--input-range", default=None, metavar="LO,HI",
                   help="the real range of the model's input that int8 covers (default: [0, 1] "
                        "for pixels, else measured by calibration); the generated header states "
                        "the mapping. A negative LO needs the = form: --input-range=-1,1")
    _add_drop_softmax(p)
    _add_size_limit(p)


def _add_drop_softmax(p: argparse.ArgumentParser) -> None:
    p.add_argument("--drop-softmax", action="store_true",
                   help="leave out a softmax or log_softmax that is the model's output: the "
                        "outputs are the logits before it (same predictions); the report says so")


def _add_size_limit(p: argparse.ArgumentParser) -> None:
    from edgegen.frontend.limits import DEFAULT_MAX_MODEL_BYTES

    p.add_argument("--max-model-bytes", type=int, default=DEFAULT_MAX_MODEL_BYTES,
                   help="refuse a model whose int8 constants or largest activation exceed this "
                        f"(default {DEFAULT_MAX_MODEL_BYTES:,}: more than any microcontroller has)")


def _add_verify(p: argparse.ArgumentParser, test_default: str, random_default: int) -> None:
    p.add_argument("--test-samples", default=test_default,
                   help=f"test inputs to verify, a number or 'all' (default {test_default})")
    p.add_argument("--random-samples", type=int, default=random_default,
                   help=f"random int8 input vectors to verify (default {random_default})")
    p.add_argument("--cc", default=None, help="host C compiler (default: cc, else gcc)")


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="auto", metavar="FORMAT",
                   help="how weights are stored: auto (the cost model chooses per layer), dense, "
                        "codebook, sparse or huffman, with per-layer overrides "
                        "(sparse,fc1=huffman,conv1=dense); see docs/storage_formats.md")
    p.add_argument("--optimize", default="balanced", choices=("size", "speed", "balanced"),
                   help="what the cost model favours when it chooses (default balanced)")


def _storage_choice(args):
    from edgegen.jobs.lower import StorageChoice

    return StorageChoice.from_options(args.format, args.optimize)


def _add_board(p: argparse.ArgumentParser, help_text: str, required: bool = False) -> None:
    p.add_argument("--board", default=None, required=required, help=help_text)


def _add_firmware_options(p: argparse.ArgumentParser) -> None:
    from edgegen.firmware.boards import DEFAULT_OPT_LEVEL, KERNEL_PATHS, OPT_LEVELS

    p.add_argument("--opt", choices=OPT_LEVELS, default=None,
                   help="optimisation level of the firmware, -O<OPT> (default: the board's opt "
                        f"field, {DEFAULT_OPT_LEVEL} when its file has none)")
    p.add_argument("--kernels", choices=KERNEL_PATHS, default=None,
                   help="the runtime's kernels: dsp (the Arm DSP extension of Cortex-M4, M7, M33) "
                        "or portable C (default: the board's kernels field)")


def _firmware_options(args, board):
    """--opt and --kernels for ``board``, checked before any slow work."""
    from edgegen.jobs.firmware_build import FirmwareOptions

    options = FirmwareOptions(None if args.opt is None else f"-{args.opt}", args.kernels)
    options.resolve(board)  # dsp on a core without it stops here
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgegen",
        description="Compress a trained PyTorch CNN and lower it to bit-exact int8 C.",
    )
    parser.add_argument("--version", action="version", version=f"edgegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a zoo model and cache its checkpoint")
    p.add_argument("model", help=ZOO_NAMES)
    _add_train_step(p)
    p.add_argument("--epochs", type=int, default=None, help="default: the model's recipe")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="where to write the checkpoint (default: the cache)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --checkpoint file that edgegen wrote")
    _add_data(p)

    p = sub.add_parser("compress", help="prune, share weights (k-means), fine-tune; measure "
                                        "the int8 model and its Deep Compression storage")
    p.add_argument("model", help=f"a zoo model ({ZOO_NAMES}) or module.path:factory")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="state_dict checkpoint (zoo models: the cached one by default)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder: compressed.npz (for deploy/generate/build), report, plots")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output folder that edgegen wrote")
    p.add_argument("--prune", default="paper",
                   help="fraction pruned: 'paper' (Han et al.'s per-layer values, zoo models), "
                        "'none', one fraction for every layer (0.9), or per layer "
                        "(fc1=0.92,fc2=0.91)")
    p.add_argument("--bits", default="conv=8,fc=5",
                   help="codebook bits: conv=B,fc=B (default conv=8,fc=5, the paper's), or per "
                        "layer (fc1=4,fc2=5)")
    p.add_argument("--prune-steps", type=int, default=3, help="prune/retrain rounds (default 3)")
    p.add_argument("--retrain-epochs", type=int, default=4, help="epochs per round (default 4)")
    p.add_argument("--finetune-epochs", type=int, default=2,
                   help="centroid fine-tuning epochs (default 2; Adam, lr 1e-4)")
    p.add_argument("--lr", type=float, default=0.04, help="retraining learning rate (SGD, cosine)")
    _add_train_step(p)
    _add_drop_softmax(p)
    p.add_argument("--init", choices=("linear", "density", "random"), default="linear",
                   help="k-means initialisation (default linear, the paper's choice)")
    p.add_argument("--sensitivity", action="store_true",
                   help="first scan each layer's accuracy against its sparsity (table and plot)")
    p.add_argument("--filters", default="none",
                   help="filter pruning before everything else (Li et al.: whole filters, smallest "
                        "L1 norm first, with their BatchNorm channels and the next layers' inputs): "
                        "'none' (default) or per layer the fraction of filters removed "
                        "(conv1=0.5,conv2=0.3; layers joined by an add, a shuffle or a depthwise "
                        "layer lose the same channels, name one of them)")
    p.add_argument("--filter-params", type=float, default=None, metavar="FRACTION",
                   help="instead of --filters: remove this fraction of all the model's parameters "
                        "by filter pruning, one ratio for every prunable layer")
    p.add_argument("--filter-finetune-epochs", type=int, default=2,
                   help="training epochs right after filter pruning (default 2)")
    p.add_argument("--filter-sensitivity", action="store_true",
                   help="first scan each layer's accuracy against the fraction of its filters "
                        "removed, without fine-tuning (filter_sensitivity.md and .png)")
    p.add_argument("--spec", type=Path, default=None,
                   help="a whole compression spec as JSON (overrides --prune/--bits/--filters/"
                        "--*-epochs)")
    p.add_argument("--seed", type=int, default=0)
    _add_data(p)
    _add_size_limit(p)

    p = sub.add_parser("deploy", help="import, quantize, generate C, build and verify on the host")
    _add_model(p)
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output folder that edgegen wrote")
    _add_board(p, "also build firmware for this board into OUT/firmware-BOARD and, "
                  "on an emulated board, verify it under QEMU")
    _add_firmware_options(p)
    _add_data(p)
    _add_quantize(p)
    _add_storage(p)
    _add_verify(p, "1000", 100)

    p = sub.add_parser("build", help="cross-compile firmware for a board and check it fits")
    _add_model(p)
    _add_board(p, "the target board (see boards/)", required=True)
    _add_firmware_options(p)
    p.add_argument("--out", type=Path, required=True, help="firmware folder (must not exist)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output folder that edgegen wrote")
    _add_data(p)
    _add_quantize(p)
    _add_storage(p)

    p = sub.add_parser("generate", help="import, quantize and generate C, without building")
    _add_model(p)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--force", action="store_true",
                   help="replace an existing output folder that edgegen wrote")
    _add_data(p)
    _add_quantize(p)
    _add_storage(p)

    p = sub.add_parser("verify", help="rebuild a deploy folder and verify it bit-exact on the "
                                      "host, or under QEMU with --board")
    p.add_argument("folder", type=Path, help="the --out folder of `edgegen deploy`")
    _add_board(p, "verify on this emulated board instead of the host")
    _add_data(p)
    _add_verify(p, "all", 1000)
    return parser


def _count(text: str, what: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{what} must be a number or 'all', got {text!r}") from None
    if value < 1:
        raise UserError(f"{what} must be at least 1, got {value}")
    return value


def _display(text: str) -> str:
    """A string from a file, safe to show in a message and to paste in a shell."""
    from edgegen.emit.c_format import comment_text

    return shlex.quote(comment_text(text))


def _model_for_artifact(path: str, recorded: dict, factory: str | None):
    """(model, name) to load a compressed artifact's weights into.

    The code comes from the zoo or from the user's own --factory: never from
    the file, which only records where it came from."""
    from edgegen.zoo import models, user_model

    made_from = (f"zoo model {recorded['zoo']}" if "zoo" in recorded
                 else f"your model {_display(recorded['factory'])}")
    if factory is not None:
        if recorded.get("factory") != factory:
            print(f"edgegen: note: {path} was compressed from {made_from}; loading its weights "
                  f"into {factory} as you asked", file=sys.stderr)
        return user_model.load_user_model(factory, None), factory.split(":")[-1]
    if "zoo" in recorded:
        return models.ZOO[recorded["zoo"]](), recorded["zoo"]
    raise UserError(
        f"{path} was compressed from {made_from}; edgegen does not import code that a file "
        f"names: pass --factory {_display(recorded['factory'])} to load it into that code "
        "(after checking it is the code you mean)")


def _load_compressed(args):
    from edgegen.compress.artifact import load_compressed

    if args.checkpoint is not None:
        raise UserError(f"{args.model} is a compressed model, which holds its weights: drop --checkpoint")
    artifact = load_compressed(Path(args.model))
    model, name = _model_for_artifact(args.model, artifact.source, args.factory)
    try:
        model = artifact.shaped_model(model)
        model.load_state_dict(artifact.state_dict)
    except RuntimeError as exc:
        raise UserError(f"{args.model} does not fit the model it is loaded into ({name}): "
                        f"{str(exc).splitlines()[0]}; pass the right --factory, or run "
                        "`edgegen compress` again") from None
    source = {**artifact.source, "compressed": args.model}
    return model.eval(), name, source, artifact.weight_grids()


def _load_data(args, zoo_name: str | None):
    """--data (with --layout), else the default data of the model: synthetic
    inputs for a zoo model that has no data here, Fashion-MNIST otherwise."""
    from edgegen.data.datasets import load_dataset, parse_layout, synthetic_dataset
    from edgegen.zoo.models import SYNTHETIC_INPUTS

    layout = parse_layout(args.layout)
    if args.data is not None:
        return load_dataset(args.data, layout)
    if zoo_name in SYNTHETIC_INPUTS:
        if layout is not None:
            raise UserError(f"--layout applies to --data; {zoo_name} runs on synthetic inputs "
                            "when no --data is given")
        return synthetic_dataset(SYNTHETIC_INPUTS[zoo_name])
    return load_dataset(None, layout)


def _zoo_name(args) -> str | None:
    """The zoo model a run is about: named, or the source of a compressed artifact."""
    from edgegen.compress.artifact import is_compressed_artifact, load_compressed
    from edgegen.zoo.models import ZOO

    if args.model in ZOO:
        return args.model
    if is_compressed_artifact(args.model):
        return load_compressed(Path(args.model)).source.get("zoo")
    return None


def _model_and_data(args):
    """(model, display name, provenance, weight scales, data set) for a zoo
    name, module:factory or a compressed .npz, and its data with the layout
    fixed by the model."""
    from edgegen.compress.artifact import is_compressed_artifact
    from edgegen.data.datasets import fit_layout
    from edgegen.zoo import checkpoints, models, user_model

    dataset = _load_data(args, _zoo_name(args))
    if is_compressed_artifact(args.model):
        model, name, source, grids = _load_compressed(args)
        return model, name, source, grids, fit_layout(dataset, model)
    if getattr(args, "factory", None) is not None:
        raise UserError("--factory goes with a compressed .npz; for your own float model give "
                        f"MODULE:FACTORY as the model and --checkpoint (got model {args.model!r})")
    if args.model in models.ZOO:  # fixed before training: training needs the layout
        dataset = fit_layout(dataset, models.ZOO[args.model]())
    model, name, source = _load_float_model(args, dataset, checkpoints, models, user_model)
    return model, name, source, None, fit_layout(dataset, model)


def _load_float_model(args, dataset, checkpoints, models, user_model):
    from edgegen.frontend.limits import check_module_size
    from edgegen.zoo.mlperf_tiny import random_weights

    if args.model in models.ZOO:
        if args.checkpoint is None and dataset.synthetic:
            model = random_weights(models.ZOO[args.model](), seed=0)
            return model, args.model, {"zoo": args.model, "weights": "random (seed 0)"}
        if args.checkpoint is None:
            model, meta = checkpoints.trained_zoo_model(args.model, dataset)
            return model, args.model, {"zoo": args.model, "checkpoint": "cache", **_plain(meta)}
        model = models.ZOO[args.model]()
        meta = checkpoints.load_checkpoint(model, args.checkpoint)
        return model, args.model, {"zoo": args.model, "checkpoint": str(args.checkpoint)}
    if ":" not in args.model:
        raise UserError(
            f"unknown model {args.model!r}: use a zoo model ({', '.join(models.ZOO)}) "
            "or module.path:factory with --checkpoint"
        )
    if args.checkpoint is None:
        raise UserError(f"{args.model} needs --checkpoint PATH (a state_dict saved with torch.save)")
    model = user_model.load_user_model(args.model, None)
    name = args.model.split(":")[1]
    check_module_size(model, name, _size_limit(args))  # before its weights are read
    checkpoints.load_checkpoint(model, args.checkpoint)
    return model, name, {"factory": args.model, "checkpoint": str(args.checkpoint)}


def _model_name(args, default: str) -> str:
    """--name, checked as a C identifier, or the model's own name."""
    from edgegen.emit.c_format import check_c_name

    if args.name is None:
        return default
    try:
        return check_c_name(args.name)
    except ValueError as exc:
        raise UserError(f"--name: {exc}") from None


def _preflight(args) -> None:
    """The checks that need no model or data: before any slow work."""
    from edgegen.output_folder import check_target

    check_target(args.out, args.force, _inputs(args))
    if getattr(args, "name", None) is not None:
        _model_name(args, args.name)


def _inputs(args) -> list[Path]:
    """The files and folders a run reads: its --out may not hold them."""
    from edgegen.data.datasets import DEFAULT_DATA_DIR

    found = [getattr(args, "checkpoint", None), getattr(args, "spec", None),
             getattr(args, "data", None) or DEFAULT_DATA_DIR]
    for spec in (getattr(args, "model", None), getattr(args, "factory", None),
                 getattr(args, "train_step", None)):
        if spec is None:
            continue
        module = spec.rpartition(":")[0]
        if spec.endswith(".npz"):
            found.append(Path(spec))
        elif module.endswith(".py"):
            found.append(Path(module))
    board = getattr(args, "board", None)
    if board is not None and (board.endswith(".toml") or "/" in board):
        found.append(Path(board))
    return [Path(p) for p in found if p is not None]


def _plain(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}


def _input_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise UserError(f"--input-range expects LO,HI (two numbers), got {text!r}")
    lo, hi = (_number(part.strip(), "--input-range") for part in parts)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UserError(f"--input-range needs finite LO < HI, got {text!r}")
    if lo > 0 or hi < 0:
        raise UserError(f"--input-range {text} must include 0 (the TFLite spec represents real "
                        "0 exactly): widen it, e.g. 0,HI")
    return lo, hi


def _quantize_options(args):
    from edgegen.jobs.quantize import QuantizeOptions
    from edgegen.ir import Rounding
    from edgegen.quantize.calibrate import CalibrationSpec, RangeMethod

    if args.calib_samples < 1:
        raise UserError(f"--calib-samples must be at least 1, got {args.calib_samples}")
    if not 50.0 < args.percentile <= 100.0:
        raise UserError(f"--percentile must be in (50, 100], got {args.percentile}")
    spec = CalibrationSpec(method=RangeMethod(args.calibration), percentile=args.percentile,
                           input_range=_input_range(args.input_range))
    return QuantizeOptions(spec, args.calib_samples, Rounding(args.rounding),
                           max_model_bytes=_size_limit(args), drop_softmax=args.drop_softmax)


def _size_limit(args) -> int:
    if args.max_model_bytes < 1:
        raise UserError(f"--max-model-bytes must be at least 1, got {args.max_model_bytes}")
    return args.max_model_bytes


def _seed(args) -> int:
    if not 0 <= args.seed < 2**32:
        raise UserError(f"--seed must be in 0..{2**32 - 1}, got {args.seed}")
    return args.seed


def _verify_options(args):
    from edgegen.jobs.deploy import VerifyOptions

    if args.random_samples < 0:
        raise UserError(f"--random-samples must be >= 0, got {args.random_samples}")
    return VerifyOptions(_count(args.test_samples, "--test-samples"), args.random_samples, cc=args.cc)


def _print_result(result, title: str) -> None:
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f} %"

    if result.golden_accuracy is None:
        print("accuracy not measured: the data has no labels")
    else:
        print(f"accuracy on {result.test_vectors} test inputs: float {pct(result.float_accuracy)}, "
              f"int8 golden {pct(result.golden_accuracy)}, C {pct(result.c_accuracy)}")
    if result.float_accuracy_full is not None and result.float_accuracy != result.float_accuracy_full:
        print(f"float accuracy on the whole test set: {pct(result.float_accuracy_full)}")
    print(result.comparison.line(f"{title} ({result.test_vectors} test inputs + "
                                 f"{result.random_vectors} random vectors)"))


def cmd_train(args) -> int:
    import time

    import torch

    from edgegen.data.datasets import fit_layout
    from edgegen.zoo import checkpoints, models, train

    if args.model not in models.ZOO:
        raise UserError(f"unknown zoo model {args.model!r}: choose one of {', '.join(models.ZOO)}")
    if args.checkpoint is not None:
        checkpoints.check_checkpoint_target(args.checkpoint, args.force)
    seed = _seed(args)
    step = _train_step(args)
    dataset = _load_data(args, args.model)
    if dataset.synthetic:
        raise UserError(f"{args.model} has no data here to train on (the MLPerf Tiny data sets "
                        "are not offline): pass --data PATH with your own")
    dataset = fit_layout(dataset, models.ZOO[args.model]())
    recipe = train.RECIPES[args.model]
    kwargs = recipe.kwargs()
    if args.epochs is not None:
        if args.epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {args.epochs}")
        kwargs["epochs"] = args.epochs
    started = time.perf_counter()
    model = train.train(models.ZOO[args.model](), dataset, seed=seed, step=step, **kwargs)
    seconds = time.perf_counter() - started
    acc = train.evaluate(model, dataset)
    path = args.checkpoint or checkpoints.checkpoint_path(args.model, dataset.name)
    checkpoints.save_checkpoint(model, path, meta={
        "model": args.model, "dataset": dataset.name, "test_accuracy": acc,
        "epochs": kwargs["epochs"], "seed": args.seed, "edgegen_version": __version__,
        "train_seconds": round(seconds, 1), "torch_threads": torch.get_num_threads(),
    })
    shown = "not measured (no labels)" if acc is None else f"{100 * acc:.2f} %"
    print(f"{args.model}: test accuracy {shown} on {dataset.name} after {seconds:.0f} s "
          f"of training; checkpoint {path}")
    return 0


def cmd_deploy(args) -> int:
    from edgegen.jobs.deploy import deploy

    _preflight(args)
    qopts = _quantize_options(args)
    vopts = _verify_options(args)
    storage = _storage_choice(args)
    firmware = _deploy_firmware_options(args)
    model, name, source, weight_grids, dataset = _model_and_data(args)
    result = deploy(model, _model_name(args, name), dataset, args.out, quantize_options=qopts,
                    verify_options=vopts, force=args.force, source=source,
                    weight_grids=weight_grids, board=args.board, firmware=firmware,
                    storage=storage, inputs=tuple(_inputs(args)))
    print((args.out / "report.md").read_text().split("\n## Storage by format")[0])
    if result.float_accuracy_full is not None:
        print(f"Float accuracy on the whole test set: {100 * result.float_accuracy_full:.2f} %")
    elif dataset.synthetic:
        print("Accuracy not measured: synthetic inputs (random normal, no labels); the model's "
              "weights are random too. Speed, size and bit-exactness do not depend on them.")
    if vopts.test_samples is not None:
        print(f"(deploy verifies a sample; `edgegen verify {args.out}` checks the whole "
              "test set and 1000 random vectors)")
    print(f"wrote {args.out} (report.md also tabulates the Deep Compression storage formats)")
    exact = result.comparison.bit_exact and (result.board is None or result.board.bit_exact)
    return 0 if exact else EXIT_MISMATCH


def _deploy_firmware_options(args):
    """With --board: its firmware options (an unknown board, or kernels it
    cannot run, fail before any work); without, --opt and --kernels have
    nothing to apply to."""
    from edgegen.firmware.boards import load_board
    from edgegen.jobs.firmware_build import FirmwareOptions

    if args.board is not None:
        return _firmware_options(args, load_board(args.board))
    given = [flag for flag, value in (("--opt", args.opt), ("--kernels", args.kernels)) if value]
    if given:
        raise UserError(f"{' and '.join(given)} choose how firmware is compiled: add --board BOARD "
                        "(deploy without a board builds only for the host)")
    return FirmwareOptions()


def _pairs(text: str, what: str) -> dict[str, str]:
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"{what} expects name=value pairs separated by commas, got {text!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _number(text: str, what: str, cast=float):
    try:
        return cast(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not a number") from None


def _compress_spec(args, model, model_name: str):
    from dataclasses import replace

    from edgegen.compress.spec import (
        PAPER_SPARSITY,
        CompressSpec,
        KMeansInit,
        default_spec,
        weight_layers,
    )

    if args.spec is not None:
        try:
            return CompressSpec.from_json(args.spec.read_text())
        except OSError as exc:
            raise UserError(f"cannot read --spec {args.spec}: {exc.strerror}") from None
        except ValueError as exc:
            raise UserError(f"--spec {args.spec}: {exc}") from None
    names = [name for name, _ in weight_layers(model)]
    if args.prune == "paper":
        if model_name not in PAPER_SPARSITY:
            raise UserError(f"--prune paper knows only {', '.join(PAPER_SPARSITY)}: give fractions")
        sparsity = PAPER_SPARSITY[model_name]
    elif args.prune == "none":
        sparsity = None
    elif "=" in args.prune:
        sparsity = {k: _number(v, "--prune") for k, v in _pairs(args.prune, "--prune").items()}
    else:
        sparsity = _number(args.prune, "--prune")
    bits = {k: _number(v, "--bits", int) for k, v in _pairs(args.bits, "--bits").items()}
    per_layer_bits = {k: v for k, v in bits.items() if k not in ("conv", "fc")}
    for what, given in (("--prune", sparsity if isinstance(sparsity, dict) else {}),
                        ("--bits", per_layer_bits)):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise UserError(f"{what} names layers the model lacks: {', '.join(unknown)} "
                            f"(its layers: {', '.join(names)})")
    try:
        spec = default_spec(model, sparsity=sparsity, init=KMeansInit(args.init),
                            conv_bits=bits.get("conv", 8),
                            fc_bits=bits.get("fc", 5), prune_steps=args.prune_steps,
                            retrain_epochs=args.retrain_epochs,
                            finetune_epochs=args.finetune_epochs, seed=args.seed)
        return replace(_with_layer_bits(spec, per_layer_bits), filters=_filter_spec(args))
    except ValueError as exc:
        raise UserError(f"bad compression settings: {exc}") from None


def _filter_spec(args):
    """--filters / --filter-params as a FilterPruneSpec, or None."""
    from edgegen.compress.spec import FilterPruneSpec

    if args.filters != "none" and args.filter_params is not None:
        raise UserError("give --filters (ratios per layer) or --filter-params (a parameter "
                        "target), not both")
    if args.filters == "none" and args.filter_params is None:
        return None
    ratios = ({k: _number(v, "--filters") for k, v in _pairs(args.filters, "--filters").items()}
              if args.filters != "none" else ())
    return FilterPruneSpec(ratios=ratios, params=args.filter_params,
                           finetune_epochs=args.filter_finetune_epochs)


def _with_layer_bits(spec, per_layer_bits: dict[str, int]):
    from dataclasses import replace

    from edgegen.compress.spec import ShareSpec

    layers = tuple(
        (name, replace(layer, share=ShareSpec(bits=per_layer_bits[name], init=layer.share.init)))
        if name in per_layer_bits and layer.share is not None else (name, layer)
        for name, layer in spec.layers
    )
    return replace(spec, layers=layers)


def cmd_compress(args) -> int:
    from edgegen.jobs.compress import ARTIFACT_NAME, RetrainRecipe, run_compress
    from edgegen.jobs.quantize import QuantizeOptions

    _preflight(args)
    if args.model.endswith(".npz"):
        raise UserError(f"{args.model} is already compressed: compress the float model")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UserError(f"--lr must be a positive number, got {args.lr}")
    _seed(args)
    step = _train_step(args)
    model, name, source, _, dataset = _model_and_data(args)
    spec = _compress_spec(args, model, args.model)
    try:
        spec.check_model(model)
    except ValueError as exc:
        raise UserError(f"{'--spec ' + str(args.spec) if args.spec else 'compression settings'}: "
                        f"{exc}") from None
    model_source = {"zoo": args.model} if "zoo" in source else {"factory": args.model}
    if "weights" in source:
        model_source["weights"] = source["weights"]
    run_compress(model, name, model_source, dataset, spec, args.out,
                 recipe=RetrainRecipe(lr=args.lr), force=args.force, sensitivity=args.sensitivity,
                 filter_sensitivity=args.filter_sensitivity,
                 inputs=tuple(_inputs(args)),
                 quantize_options=QuantizeOptions(drop_softmax=args.drop_softmax), step=step)
    print((args.out / "report.md").read_text().split("\n## Weight distributions")[0])
    print(f"wrote {args.out}: deploy it with `edgegen deploy {args.out / ARTIFACT_NAME} --out DIR`")
    return 0


def cmd_build(args) -> int:
    from edgegen.firmware.boards import load_board
    from edgegen.jobs.deploy import firmware_for_board
    from edgegen.jobs.quantize import quantize_model

    board = load_board(args.board)
    firmware = _firmware_options(args, board)
    _preflight(args)
    qopts = _quantize_options(args)
    storage = _storage_choice(args)
    model, name, _, weight_grids, dataset = _model_and_data(args)
    qgraph = quantize_model(model, _model_name(args, name), dataset, qopts, weight_grids)
    build = firmware_for_board(qgraph, board, dataset, args.out, force=args.force,
                               inputs=tuple(_inputs(args)), storage=storage, firmware=firmware)
    for line in build.summary_lines():
        print(line)
    print(f"wrote {args.out}")
    return 0


def cmd_generate(args) -> int:
    from edgegen.jobs.deploy import emit
    from edgegen.jobs.quantize import quantize_model
    from edgegen.output_folder import atomic_folder

    _preflight(args)
    qopts = _quantize_options(args)
    storage = _storage_choice(args)
    model, name, _, weight_grids, dataset = _model_and_data(args)
    qgraph = quantize_model(model, _model_name(args, name), dataset, qopts, weight_grids)
    with atomic_folder(args.out, args.force, _inputs(args)) as folder:
        lowered = emit(qgraph, folder, storage)
    formats = ", ".join(f"{n} {f}" for n, f in lowered.storage.formats().items())
    print(f"wrote {args.out}: {', '.join(sorted(lowered.sources.files))} and runtime/ "
          f"(arena {lowered.memory.arena_size} bytes; weights: {formats})")
    return 0


def _verify_dataset(args):
    """--data, else the data the deploy report names (synthetic data made
    again from its seed), else the default; the layout as given, else as
    the report recorded it."""
    from edgegen.data.datasets import load_dataset, parse_layout, synthetic_dataset
    from edgegen.report.render import REPORT_JSON, saved_report

    saved = saved_report(args.folder)
    layout = parse_layout(args.layout or saved.layout) if args.layout or saved.layout in (
        "nchw", "nhwc") else None
    if args.data is not None:
        return load_dataset(args.data, layout)
    if saved.synthetic_seed is not None and saved.sample_shape is not None:
        return synthetic_dataset(saved.sample_shape, saved.synthetic_seed)
    if saved.present and saved.data_path is None:
        raise UserError(f"{args.folder / REPORT_JSON} does not say which data set the model was "
                        "deployed with: pass --data PATH")
    return load_dataset(saved.data_path, layout)


def _train_step(args):
    """--train-step MODULE:FUNCTION as a function; else a zoo model's own loss
    (the autoencoder's reconstruction), else None for cross-entropy."""
    from edgegen.zoo.train import LOSS_STEPS, RECIPES, Loss
    from edgegen.zoo.user_model import load_user_function

    if args.train_step is not None:
        return load_user_function(args.train_step, "--train-step")
    recipe = RECIPES.get(args.model)
    return None if recipe is None or recipe.loss is Loss.CROSS_ENTROPY else LOSS_STEPS[recipe.loss]


def cmd_verify(args) -> int:
    from edgegen.jobs.deploy import reverify

    if not args.folder.is_dir():
        raise UserError(f"{args.folder} is not a folder: pass the --out folder of `edgegen deploy`")
    vopts = _verify_options(args)
    dataset = _verify_dataset(args)
    if args.board is not None:
        return _verify_on_board(args, dataset, vopts)
    result = reverify(args.folder, dataset, vopts)
    _print_result(result, "verification")
    return EXIT_OK if result.comparison.bit_exact else EXIT_MISMATCH


def _verify_on_board(args, dataset, vopts) -> int:
    import tempfile

    from edgegen.firmware.boards import load_board
    from edgegen.jobs.board_verify import verify_on_board
    from edgegen.jobs.deploy import QGRAPH_FILE, board_vectors
    from edgegen.quantize.artifact import load_qgraph

    board = load_board(args.board)
    qgraph = load_qgraph(args.folder / QGRAPH_FILE)
    vectors = board_vectors(qgraph, dataset, vopts)
    with tempfile.TemporaryDirectory(prefix="edgegen-qemu-") as work:
        result = verify_on_board(qgraph, board, vectors, Path(work))
    for line in result.lines():
        print(line)
    return EXIT_OK if result.bit_exact else EXIT_MISMATCH


COMMANDS = {"train": cmd_train, "compress": cmd_compress, "deploy": cmd_deploy, "build": cmd_build,
            "generate": cmd_generate, "verify": cmd_verify}


# errno values that mean the machine, not edgegen, is in the way.
_ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                       errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EMFILE,
                       errno.ENFILE, errno.EIO}


def _error(text: str) -> None:
    print(f"edgegen: error: {text}", file=sys.stderr)


def run_command(args) -> int:
    """Run a parsed command; every exception becomes its exit status."""
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        _error(str(exc))
        return EXIT_USER_ERROR
    except VerificationFailure as exc:
        print(f"edgegen: verification failed: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    except KeyboardInterrupt:  # where no handler could be installed (not the main thread)
        print("edgegen: interrupted; nothing was left behind", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as exc:
        how = ("interrupted" if exc.signum == signal.SIGINT
               else f"terminated by {signal.Signals(exc.signum).name}")
        print(f"edgegen: {how}; nothing was left behind", file=sys.stderr)
        return 128 + exc.signum
    except SystemExit as exc:  # edgegen never exits from inside a command: the model's code did
        _error(f"the model's code called sys.exit({exc.code!r}) while edgegen ran it: fix the "
               "model module so that importing, building and running the model returns normally")
        return EXIT_USER_ERROR
    except MemoryError:
        _error("out of memory: the model or data set is too large for this machine; lower "
               "--max-model-bytes to have such models refused up front")
        return EXIT_USER_ERROR
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            return _internal_error()
        where = f" ({exc.filename})" if exc.filename else ""
        _error(f"{exc.strerror}{where}: free disk space, fix the permissions or choose "
               "another path")
        return EXIT_USER_ERROR
    except Exception:
        return _internal_error()


def _internal_error() -> int:
    traceback.print_exc()
    print(f"edgegen: internal error (edgegen {__version__}): this is a bug in edgegen; please "
          "report it with the command line and the traceback above", file=sys.stderr)
    return EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with interrupts.signals_raise():
        return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
