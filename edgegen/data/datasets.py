"""A data set as edgegen uses it: inputs for calibration, training and
verification, labels when there are any.

Three sources (``load_dataset``): a folder of MNIST-format IDX files
(Fashion-MNIST by default), a NumPy ``.npz`` with Keras' names (``x_train``,
``x_test``, optionally ``y_train``, ``y_test``, ``x_calib``) or a plain
``.npy`` of inputs; and ``synthetic_dataset`` for a model that has no data
here (random normal inputs of its shape, no labels).

Inputs stay as given (uint8 pixels are not widened, NHWC is not transposed)
until a batch is taken: ``Dataset.floats`` gives the float NCHW (or ``(N, F)``)
batch the PyTorch model takes. uint8 inputs are pixels: the model sees
``pixel / 255`` with no other normalisation, and edgegen quantizes that
input exactly as ``q = pixel - 128`` (scale 1/255, zero point -128).
Other dtypes are real values, used as they are.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from edgegen.errors import UserError

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATASET_NAME = "fashion-mnist"
PIXEL_INPUT_RANGE = (0.0, 1.0)  # pixel / 255: the int8 input is exactly pixel - 128
SYNTHETIC_NAME = "synthetic"
DATA_HELP = ("pass --data PATH: a folder of MNIST-format IDX files, an .npz with x_train and "
             "x_test (and optionally y_train, y_test, x_calib), or an .npy of inputs")


class Layout(enum.Enum):
    """How a batch of inputs is stored, as the batch axis and then a sample."""

    NCHW = "nchw"  # channels first, as PyTorch takes it
    NHWC = "nhwc"  # channels last, as TensorFlow and most sensor pipelines give it
    NHW = "nhw"  # one channel, left out (MNIST's IDX files)
    FEATURES = "features"  # (N, F): a vector per sample, for fully connected models


_LAYOUT_NAMES = {Layout.NCHW: "NCHW tensors", Layout.NHWC: "NHWC tensors",
                 Layout.NHW: "one-channel images", Layout.FEATURES: "feature vectors"}

# dimensions of a batch -> the layouts it can have
_LAYOUTS_BY_NDIM = {2: (Layout.FEATURES,), 3: (Layout.NHW,), 4: (Layout.NCHW, Layout.NHWC)}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and optional labels in memory, read-only.

    ``*_inputs`` are ``(N,) + sample`` arrays stored as ``layout`` says
    (``None``: four-dimensional data whose layout the model decides, see
    ``fit_layout``); uint8 means pixels (``pixels``). ``*_labels`` are int64
    class indices ``(N,)`` or ``None``. ``calib_inputs``, when given, are what
    calibration draws from instead of the training inputs. ``path`` is the
    folder or file the data came from (``None`` when synthetic).
    """

    name: str
    path: Path | None
    train_inputs: np.ndarray
    test_inputs: np.ndarray
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    calib_inputs: np.ndarray | None = None
    layout: Layout | None = Layout.NHW
    synthetic_seed: int | None = None  # set for synthetic data: what regenerates it

    def __post_init__(self):
        for split in ("train", "test"):
            labels = getattr(self, f"{split}_labels")
            inputs = getattr(self, f"{split}_inputs")
            if labels is not None and len(labels) != len(inputs):
                raise ValueError(f"{len(inputs)} {split} inputs but {len(labels)} labels")

    def __repr__(self) -> str:
        labelled = "labelled" if self.has_labels else "unlabelled"
        return (f"Dataset(name={self.name!r}, path={str(self.path)!r}, "
                f"train={len(self.train_inputs)}, test={len(self.test_inputs)}, {labelled}, "
                f"sample={self.sample_shape})")

    @property
    def has_labels(self) -> bool:
        return self.train_labels is not None and self.test_labels is not None

    @property
    def pixels(self) -> bool:
        return self.test_inputs.dtype == np.uint8

    @property
    def synthetic(self) -> bool:
        return self.synthetic_seed is not None

    @property
    def input_range(self) -> tuple[float, float] | None:
        """The real range the int8 input covers when the data fixes it
        (pixels), else ``None``: calibration measures it."""
        return PIXEL_INPUT_RANGE if self.pixels else None

    @property
    def calibration_inputs(self) -> np.ndarray:
        return self.train_inputs if self.calib_inputs is None else self.calib_inputs

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One input as the PyTorch model takes it: (C, H, W) or (F,)."""
        shape = tuple(self.test_inputs.shape[1:])
        if self.layout is Layout.NHWC:
            return (shape[2], shape[0], shape[1])
        if self.layout is Layout.NHW:
            return (1,) + shape
        return shape

    def floats(self, inputs: np.ndarray) -> np.ndarray:
        """A batch of this data set's inputs as the float32 batch the model
        takes: NCHW (or ``(N, F)``), pixels divided by 255."""
        if self.layout is None:
            raise ValueError("the layout of this data set is not fixed yet: call fit_layout")
        inputs = np.asarray(inputs)
        if inputs.dtype == np.uint8:
            batch = inputs.astype(np.float32) / np.float32(255.0)
        else:
            batch = inputs.astype(np.float32, copy=False)
        if self.layout is Layout.NHWC:
            return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        if self.layout is Layout.NHW:
            return batch[:, None]
        return batch

    def tensor(self, inputs: np.ndarray) -> torch.Tensor:
        """``floats`` as a torch tensor."""
        return torch.from_numpy(np.array(self.floats(inputs), copy=True))

    def describe(self) -> str:
        """One line for reports: where the data came from and what it holds."""
        what = _LAYOUT_NAMES.get(self.layout, "layout not fixed")
        kind = "uint8 pixels / 255" if self.pixels else f"{self.test_inputs.dtype} values"
        if self.synthetic:
            return (f"synthetic: random normal inputs of shape {self.sample_shape} (seed "
                    f"{self.synthetic_seed}), no labels")
        labels = "labelled" if self.has_labels else "no labels"
        return (f"{self.name} ({self.path}): {len(self.train_inputs)} train, "
                f"{len(self.test_inputs)} test inputs of shape {self.sample_shape} "
                f"({what}, {kind}), {labels}")


def dataset_name(path: Path) -> str:
    """A file-name-safe name: the file's stem, the folder's, or its parent's for ``raw``."""
    if path.resolve() == DEFAULT_DATA_DIR.resolve():
        return DEFAULT_DATASET_NAME
    place = path.resolve()
    if place.is_file():
        name = place.stem
    else:
        if place.name.lower() in ("raw", "data", "idx", "") and place.parent.name:
            place = place.parent
        name = place.name
    name = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return name or "dataset"


def check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Class indices as int64 ``(N,)``: integers ``(N,)`` or ``(N, 1)``, or
    one-hot rows ``(N, K)``; anything else is refused naming ``where``."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2 and labels.shape[1] > 1:
        ones = labels == 1
        if not (np.all((labels == 0) | ones) and np.all(ones.sum(axis=1) == 1)):
            raise UserError(f"{where} is {labels.shape}: two-dimensional labels must be one-hot "
                            "rows (one 1, the rest 0); or give class indices of shape (N,)")
        return labels.argmax(axis=1).astype(np.int64)
    if labels.ndim != 1:
        raise UserError(f"{where} has shape {labels.shape}: labels are class indices of shape (N,)")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise UserError(f"{where} holds non-integer labels: labels are class indices 0..K-1")
    elif labels.dtype.kind not in "iub":
        raise UserError(f"{where} holds {labels.dtype} data: labels are integer class indices")
    if labels.size and labels.min() < 0:
        raise UserError(f"{where} has label {labels.min()}: class indices start at 0")
    return labels.astype(np.int64)


def check_inputs(inputs: np.ndarray, where: str) -> np.ndarray:
    """Inputs as a read-only batch: numbers (not complex), at least one
    sample, two to four dimensions, all finite."""
    if inputs.dtype.kind not in "iufb":
        raise UserError(f"{where} holds {inputs.dtype} data: inputs must be numbers")
    if inputs.ndim not in _LAYOUTS_BY_NDIM:
        raise UserError(
            f"{where} has shape {inputs.shape}: inputs are (N, F) feature vectors, (N, H, W) "
            "one-channel images or (N, C, H, W) / (N, H, W, C) tensors")
    if len(inputs) == 0 or inputs.size == 0:
        raise UserError(f"{where} is empty (shape {inputs.shape})")
    if inputs.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(inputs)))
        if bad:
            raise UserError(f"{where} holds {bad} NaN or infinite values: inputs must be finite")
    if inputs.dtype.kind == "b":
        inputs = inputs.astype(np.uint8)
    inputs.setflags(write=False)
    return inputs


def check_same_samples(arrays: dict[str, np.ndarray], source: Path) -> None:
    """Every input array of a data set holds samples of one shape."""
    shapes = {name: a.shape[1:] for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {tuple(a.shape)}" for name, a in arrays.items())
        raise UserError(f"{source}: inputs of different shapes ({listed}); every split must "
                        "hold samples of one shape")
    kinds = {name: a.dtype == np.uint8 for name, a in arrays.items()}
    if len(set(kinds.values())) > 1:
        raise UserError(f"{source}: some inputs are uint8 pixels, some are not; give every "
                        "split the same dtype")


def layout_of(ndim: int, given: Layout | None) -> Layout | None:
    """The layout of ``ndim``-dimensional batches: the one ``given``, the
    only one possible, or ``None`` (four dimensions: ``fit_layout`` decides)."""
    possible = _LAYOUTS_BY_NDIM[ndim]
    if given is not None:
        if given not in possible:
            raise UserError(f"--layout {given.value} does not fit {ndim}-dimensional inputs "
                            f"({' or '.join(p.value for p in possible)})")
        return given
    return possible[0] if len(possible) == 1 else None


def load_dataset(path: Path | str | None = None, layout: Layout | None = None) -> Dataset:
    """The data set at ``path``: an IDX folder, an ``.npz`` or an ``.npy``.

    ``None`` means Fashion-MNIST from the Debian package
    ``dataset-fashion-mnist`` (``DEFAULT_DATA_DIR``). ``layout`` says how
    four-dimensional inputs are stored; without it, ``fit_layout`` infers
    it from the model.
    """
    from edgegen.data.idx_folder import load_idx_folder
    from edgegen.data.numpy_files import load_numpy_dataset

    if path is None:
        return load_idx_folder(DEFAULT_DATA_DIR, default=True)
    path = Path(path)
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as exc:
        raise UserError(f"cannot read data {path}: {exc.strerror or exc}") from None
    if not exists:
        raise UserError(f"data {path} does not exist: {DATA_HELP}")
    if is_dir:
        return load_idx_folder(path, layout=layout)
    if path.suffix.lower() in (".npz", ".npy"):
        return load_numpy_dataset(path, layout)
    raise UserError(f"data {path} is neither a folder of IDX files nor an .npz or .npy file: "
                    f"{DATA_HELP}")


def synthetic_dataset(sample_shape: tuple[int, ...], seed: int = 0, train: int = 256,
                      test: int = 64) -> Dataset:
    """Random normal float inputs of ``sample_shape`` (NCHW or (F,)), no
    labels: calibration and verification data for a model whose real data
    is not here (kernel speed and memory do not depend on it)."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in sample_shape)
    layout = Layout.FEATURES if len(shape) == 1 else Layout.NCHW
    if len(shape) not in (1, 3):
        raise ValueError(f"synthetic data takes (F,) or (C, H, W) samples, got {shape}")
    train_inputs = rng.standard_normal((train,) + shape, dtype=np.float32)
    test_inputs = rng.standard_normal((test,) + shape, dtype=np.float32)
    train_inputs.setflags(write=False)
    test_inputs.setflags(write=False)
    return Dataset(SYNTHETIC_NAME, None, train_inputs, test_inputs, layout=layout,
                   synthetic_seed=seed)


def _accepts(model: torch.nn.Module, dataset: Dataset) -> str | None:
    """``None`` if ``model`` runs on one of ``dataset``'s inputs, else why not."""
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(dataset.tensor(dataset.test_inputs[:1]))
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
        lines = str(exc).strip().splitlines()
        return lines[0][:300] if lines else type(exc).__name__
    finally:
        model.train(was_training)
    return None


def fit_layout(dataset: Dataset, model: torch.nn.Module) -> Dataset:
    """``dataset`` with its layout fixed by what ``model`` accepts.

    Four-dimensional inputs without a given layout are tried as NCHW and as
    NHWC on one sample: the one the model runs on is kept; if both run, the
    case is ambiguous and refused. Any layout is checked the same way, so a
    model that cannot take the data fails here with the model's own reason.
    """
    shown = str(dataset.path) if dataset.path is not None else dataset.name
    if dataset.layout is not None:
        reason = _accepts(model, dataset)
        if reason is not None:
            raise UserError(f"the model does not take the inputs of {shown} ("
                            f"{_LAYOUT_NAMES[dataset.layout]} of shape {dataset.sample_shape}): "
                            f"{reason}; pass --data with the data the model was made for")
        return dataset
    fits = {layout: _accepts(model, replace(dataset, layout=layout))
            for layout in (Layout.NCHW, Layout.NHWC)}
    good = [layout for layout, reason in fits.items() if reason is None]
    raw = tuple(dataset.test_inputs.shape[1:])
    if len(good) == 1:
        return replace(dataset, layout=good[0])
    if len(good) == 2:
        raise UserError(f"{shown} holds samples of shape {raw}, which the model takes both as "
                        "NCHW and as NHWC: pass --layout nchw or --layout nhwc")
    raise UserError(f"the model takes {shown}'s samples of shape {raw} neither as NCHW "
                    f"({fits[Layout.NCHW]}) nor as NHWC ({fits[Layout.NHWC]})")


def parse_layout(text: str | None) -> Layout | None:
    if text is None:
        return None
    try:
        return Layout(text.lower())
    except ValueError:
        raise UserError(f"--layout {text!r}: choose nchw or nhwc") from None

