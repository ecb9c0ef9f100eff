"""Load a user's own model from a ``module.path:factory`` spec.

``factory`` is any callable in the module that returns an ``nn.Module`` (a
function or the model class itself); a module-level ``nn.Module`` instance is
accepted as is.  The module part may also be a ``.py`` file path
(``models/net.py:make_net``).  The current directory is put on ``sys.path``
so that a model file beside the user imports as a module.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

from torch import nn

from edgegen.errors import UserError
from edgegen.zoo.checkpoints import load_checkpoint

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

_SPEC_HELP = (
    "expected MODULE:FACTORY, e.g. `mymodels:make_net` for the function make_net "
    "in mymodels.py in the current directory"
)


def parse_spec(spec: str) -> tuple[str, str]:
    """(module part, attribute path) of ``module:factory``; UserError if malformed.
    Pure syntax: nothing is imported."""
    module_part, sep, attr_part = spec.rpartition(":")
    if not sep or not module_part or not attr_part:
        raise UserError(f"model spec {spec!r} is malformed: {_SPEC_HELP}")
    if not _DOTTED.fullmatch(attr_part):
        raise UserError(
            f"model spec {spec!r} is malformed: {attr_part!r} is not a Python name; {_SPEC_HELP}"
        )
    if not module_part.endswith(".py") and not _DOTTED.fullmatch(module_part):
        raise UserError(
            f"model spec {spec!r} is malformed: {module_part!r} is neither a dotted "
            f"module path nor a .py file; {_SPEC_HELP}"
        )
    return module_part, attr_part


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise UserError(f"model file {path} not found")
    module_name = "edgegen_user_model_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[module_name]
        raise UserError(f"importing model file {path} failed: {_describe(exc)}") from None
    return module


def _import_module(name: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise UserError(
                f"model module {name!r} not found (looked in the current directory "
                f"{cwd} and on the Python path): {_describe(exc)}"
            ) from None
        raise UserError(f"importing model module {name!r} failed: {_describe(exc)}") from None
    except (Exception, SystemExit) as exc:  # SyntaxError, the module's own errors and exits
        raise UserError(f"importing model module {name!r} failed: {_describe(exc)}") from None


def _resolve(spec: str) -> object:
    """The object ``module:attr`` names, imported; UserError naming the spec if not there."""
    module_part, attr_part = parse_spec(spec)
    if module_part.endswith(".py"):
        module = _import_file(Path(module_part))
    else:
        module = _import_module(module_part)

    target: object = module
    for attr in attr_part.split("."):
        if not hasattr(target, attr):
            public = sorted(
                n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
            )
            hint = f" (it has: {', '.join(public[:10])})" if public else ""
            raise UserError(f"model spec {spec!r}: {module_part} has no attribute {attr_part!r}{hint}")
        target = getattr(target, attr)

    return target


def load_user_model(spec: str, checkpoint: Path | str | None) -> nn.Module:
    """Build the model ``spec`` names, load ``checkpoint`` into it if given, return it in eval mode.

    Without a checkpoint the model keeps whatever weights its factory gave it.
    Every problem the user can fix is a ``UserError`` naming the spec.
    """
    target = _resolve(spec)
    attr_part = parse_spec(spec)[1]
    if isinstance(target, nn.Module):
        model = target
    elif callable(target):
        try:
            model = target()
        except (Exception, SystemExit) as exc:
            raise UserError(
                f"model spec {spec!r}: calling {attr_part}() failed: {_describe(exc)}"
            ) from None
        if not isinstance(model, nn.Module):
            raise UserError(
                f"model spec {spec!r}: {attr_part}() returned {type(model).__name__}, "
                "not a torch.nn.Module"
            )
    else:
        raise UserError(
            f"model spec {spec!r}: {attr_part} is a {type(target).__name__}, not a function "
            "or class returning a torch.nn.Module"
        )

    if checkpoint is not None:
        load_checkpoint(model, Path(checkpoint))
    return model.eval()


def load_user_function(spec: str, flag: str):
    """The function ``module:function`` names (a ``--train-step``), wrapped so
    that its failures and a result that is not a scalar tensor become one
    UserError naming ``flag``."""
    import torch

    function = _resolve(spec)
    if not callable(function) or isinstance(function, (type, nn.Module)):
        raise UserError(f"{flag} {spec!r} is a {type(function).__name__}, not a function")

    def call(*args):
        try:
            result = function(*args)
        except (Exception, SystemExit) as exc:
            raise UserError(f"{flag} {spec} failed: {_describe(exc)}") from None
        if not isinstance(result, torch.Tensor) or result.numel() != 1:
            raise UserError(f"{flag} {spec} returned {type(result).__name__}"
                            f"{'' if not isinstance(result, torch.Tensor) else ' of shape ' + str(tuple(result.shape))}"
                            ": it must return the loss as a scalar tensor")
        return result.reshape(())
    return call
