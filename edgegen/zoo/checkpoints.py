"""Checkpoints of trained models, and the cache of trained zoo models.

A checkpoint is a ``torch.save``d dict ``{"format": ..., "version": ...,
"meta": {...}, "state_dict": {...}}`` loaded with ``weights_only=True`` (no
pickled code runs).  ``meta`` holds plain values only: model name, dataset,
accuracy, edgegen version, training recipe.
"""

from __future__ import annotations

import enum
import os
import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from edgegen import __version__
from edgegen.errors import UserError, brief
from edgegen.output_folder import apply_umask
from edgegen.zoo.models import ZOO
from edgegen.zoo.train import RECIPES, TrainRecipe, evaluate, train

if TYPE_CHECKING:
    from edgegen.data.datasets import Dataset

CHECKPOINT_FORMAT = "edgegen-checkpoint"
CHECKPOINT_VERSION = 1
# torch's weights-only unpickler names a global it refuses like this; other
# failures (random bytes: "Unsupported operand 76") are not pickled objects.
_DISALLOWED_GLOBAL = re.compile(r"unsupported global", re.IGNORECASE)
_WEIGHTS_UNPICKLER = re.compile(r"WeightsUnpickler error:\s*(.+)")
_DTYPE_FIX = {torch.float32: ".float()", torch.float64: ".double()", torch.float16: ".half()"}
# A checkpoint holds the weights once plus pickle and zip overhead; a file
# many times larger is not one, and torch.load would read it all into memory.
_SIZE_FACTOR = 4
_SIZE_SLACK = 16 * 1024 * 1024


def cache_dir() -> Path:
    """``$EDGEGEN_CACHE``, else ``$XDG_CACHE_HOME/edgegen``, else ``~/.cache/edgegen``."""
    explicit = os.environ.get("EDGEGEN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "edgegen"


def checkpoint_path(model_name: str, dataset_name: str) -> Path:
    """Where the trained zoo model ``model_name`` on ``dataset_name`` is cached."""
    return cache_dir() / "checkpoints" / f"{model_name}-{dataset_name}.pt"


def save_checkpoint(model: nn.Module, path: Path | str, *, meta: dict) -> dict:
    """Write ``model``'s state_dict and ``meta`` to ``path`` atomically.

    The file is written beside its destination, then renamed over it, so a
    crash never leaves a half-written checkpoint.  ``edgegen_version`` and
    ``saved_at`` are added to ``meta`` unless given; the meta written is returned.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full_meta = {"edgegen_version": __version__, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    full_meta.update(meta)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "meta": full_meta,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        apply_umask(tmp_name)  # mkstemp creates 0600; a checkpoint is not secret
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return full_meta


def check_checkpoint_target(path: Path | str, force: bool) -> None:
    """Refuse to train into ``path`` unless it is new, or (with ``force``) a
    checkpoint edgegen wrote. Called before training, so that nothing is
    lost and no time is wasted: a file of the user's is never replaced,
    whatever the flags."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_file():
        raise UserError(f"checkpoint {path} exists and is not a file: choose another --checkpoint path")
    if not _is_edgegen_checkpoint(path):
        raise UserError(
            f"{path} exists and is not an edgegen checkpoint; edgegen replaces only checkpoints "
            "it wrote, even with --force: choose another --checkpoint path"
        )
    if not force:
        raise UserError(f"checkpoint {path} exists: pass --force to replace it, or choose another "
                        "--checkpoint path")


def _is_edgegen_checkpoint(path: Path) -> bool:
    # mmap: only the small pickled header is read, not the tensors of a big file.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a torch zip file at all, or not loadable: not ours
        return False
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def _read_payload(path: Path) -> tuple[dict, dict]:
    """(state_dict, meta) of a checkpoint file; a bare state_dict is accepted too."""
    if not path.is_file():
        raise UserError(
            f"checkpoint {path} not found: train it with `edgegen train NAME` or pass --checkpoint"
        )
    try:
        # mmap stays off (the default): a damaged file fails while reading,
        # not later on first access to a tensor. torch's warnings about
        # pickle protocols would only add noise to the error below.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise UserError(_unreadable(path, exc)) from None
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        version = payload.get("version")
        if version != CHECKPOINT_VERSION:
            raise UserError(
                f"checkpoint {path} has format version {_shown(version)}; this edgegen "
                f"({__version__}) reads version {CHECKPOINT_VERSION}: retrain it"
            )
        state_dict, meta = payload.get("state_dict"), payload.get("meta", {})
    else:
        # A plain torch.save(model.state_dict(), path) from the user's own training.
        state_dict, meta = payload, {}
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise UserError(
            f"checkpoint {path} does not hold a state_dict (a dict of tensors); "
            "save one with torch.save(model.state_dict(), PATH)"
        )
    if not isinstance(meta, dict):
        meta = {}
    return state_dict, meta


def _unreadable(path: Path, exc: Exception) -> str:
    """The message for a file torch.load refused.

    Only a real pickle that names a global outside torch's allow-list holds
    "pickled Python objects"; random or truncated bytes fail in the same
    unpickler with "Unsupported operand" and the like, and are just not a
    weights file."""
    text = str(exc).strip()
    if _DISALLOWED_GLOBAL.search(text):
        return (
            f"checkpoint {path} holds pickled Python objects (such as a whole model "
            "saved with torch.save(model)), which edgegen does not execute: "
            "save model.state_dict() instead"
        )
    detail = _WEIGHTS_UNPICKLER.search(text)
    cause = (detail.group(1) if detail else (text.splitlines()[0] if text else "")).strip()[:200]
    cause = f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__
    return (
        f"checkpoint {path} is not a readable PyTorch weights file (corrupt, truncated, "
        f"or not saved by torch.save): {cause}"
    )


def _shown(value) -> str:
    """Text from the file as a one-line message shows it: as is when short
    and printable, else its repr cut short."""
    if isinstance(value, str) and value.isprintable() and len(value) <= 80:
        return value
    return brief(value)


def _mismatch(model: nn.Module, state_dict: dict) -> str | None:
    """Why ``state_dict`` does not fit ``model``, or None if it does."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]

    def listed(keys: list[str]) -> str:
        shown = ", ".join(_shown(k) for k in keys[:5])
        return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    problems = []
    if missing:
        problems.append(f"missing keys {listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {listed(unexpected)}")
    if problems:
        return "; ".join(problems)
    for key, tensor in expected.items():
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            return (
                f"{key} has shape {tuple(state_dict[key].shape)} in the checkpoint "
                f"but {tuple(tensor.shape)} in the model"
            )
    return None


def _check_tensors(path: Path, model: nn.Module, state_dict: dict) -> None:
    """Every tensor as the model holds it: same dtype, dense, on the CPU.

    load_state_dict would convert float16/float64/int/complex values
    silently (a complex weight loses its imaginary part, a float64 one its
    precision), so a checkpoint that differs is refused instead."""
    expected = model.state_dict()
    for key, tensor in state_dict.items():
        if tensor.layout != torch.strided or tensor.device.type != "cpu":
            raise UserError(
                f"checkpoint {path}: {key} is a {tensor.layout} tensor on {tensor.device}, not a "
                "dense CPU tensor; save it with torch.save(model.cpu().state_dict(), PATH)"
            )
        want = expected[key].dtype
        if tensor.dtype != want:
            fix = _DTYPE_FIX.get(want, f".to({want})")
            raise UserError(
                f"checkpoint {path}: {key} is {tensor.dtype} in the checkpoint but {want} in the "
                f"model, and edgegen does not convert weights silently; save the weights as the "
                f"model holds them, e.g. torch.save(model{fix}.state_dict(), PATH)"
            )


def _check_size(path: Path, model: nn.Module) -> None:
    """Refuse a file far larger than the model's weights before torch reads
    it into memory: it cannot be a checkpoint of this model."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    limit = _SIZE_FACTOR * weights + _SIZE_SLACK
    size = path.stat().st_size if path.is_file() else 0
    if size > limit:
        raise UserError(
            f"checkpoint {path} is {size} bytes, but the model's weights take {weights} bytes: "
            "it is not a checkpoint of this model (pass the state_dict of this model, "
            "saved with torch.save(model.state_dict(), PATH))"
        )


def load_checkpoint(model: nn.Module, path: Path | str) -> dict:
    """Load the weights at ``path`` into ``model`` (in place) and return the meta dict.

    Raises ``UserError`` if the file is missing, unreadable, or its state_dict
    does not fit ``model`` (keys, shapes and dtypes must all match).
    """
    path = Path(path)
    _check_size(path, model)
    state_dict, meta = _read_payload(path)
    problem = _mismatch(model, state_dict)
    if problem is not None:
        saved_as = f" (saved for model '{_shown(meta['model'])}')" if "model" in meta else ""
        raise UserError(
            f"checkpoint {path} does not fit the model{saved_as}: {problem}; "
            "it is probably a checkpoint of a different model"
        )
    _check_tensors(path, model, state_dict)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:  # anything torch still refuses; its message spans lines
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"checkpoint {path} does not fit the model: {first}") from None
    return meta


def trained_zoo_model(
    name: str,
    dataset: Dataset,
    *,
    train_if_missing: bool = True,
    retrain: bool = False,
    progress: bool = True,
) -> tuple[nn.Module, dict]:
    """The zoo model ``name`` trained on ``dataset``, in eval mode, and its checkpoint meta.

    Loaded from ``checkpoint_path(name, dataset.name)`` if cached; otherwise
    trained with ``RECIPES[name]``, evaluated on the test split, saved and
    returned (or ``UserError`` if ``train_if_missing`` is false).
    ``retrain=True`` trains and overwrites the cached checkpoint even if present.
    """
    if name not in ZOO:
        raise UserError(f"unknown zoo model {name!r}: choose one of {', '.join(sorted(ZOO))}")
    path = checkpoint_path(name, dataset.name)
    if path.is_file() and not retrain:
        model = ZOO[name]()
        meta = load_checkpoint(model, path)
        return model.eval(), meta
    if dataset.synthetic:
        raise UserError(f"{name} cannot be trained on synthetic inputs: pass --data PATH with "
                        "your data, or use random weights")
    if not train_if_missing and not retrain:
        raise UserError(
            f"checkpoint {path} not found: train it with `edgegen train {name}` or pass --checkpoint"
        )

    recipe = RECIPES[name]
    seed = 0
    torch.manual_seed(seed)
    model = ZOO[name]()
    started = time.perf_counter()
    train(model, dataset, seed=seed, progress=progress, **recipe.kwargs())
    train_seconds = time.perf_counter() - started
    accuracy = evaluate(model, dataset)
    meta = {
        "model": name,
        "dataset": dataset.name,
        "test_accuracy": accuracy,
        "train_seconds": round(train_seconds, 1),
        "seed": seed,
        "torch_threads": torch.get_num_threads(),
        "recipe": _recipe_meta(recipe),
    }
    return model, save_checkpoint(model, path, meta=meta)


def _recipe_meta(recipe: TrainRecipe) -> dict:
    """A recipe as plain values (enums by their value), fit for ``weights_only`` loading."""
    return {
        key: value.value if isinstance(value, enum.Enum) else value
        for key, value in recipe.kwargs().items()
    }


def load_checkpoint_meta(path: Path | str) -> dict:
    """The meta dict of a checkpoint, without a model to load it into."""
    return _read_payload(Path(path))[1]
