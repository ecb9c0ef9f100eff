"""Whole models, end to end: golden model == C on the host, byte for byte."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from compact_models import FireNet, ResidualNet, ShuffleUnit, WideFireNet, separable_net
from toolchain_support import require_tool
from edgegen.host.compiler import WARNING_FLAGS, compile_executable
from edgegen.jobs.deploy import VerifyOptions, deploy, emit
from edgegen.jobs.quantize import QuantizeOptions, int8_inputs, quantize_model
from edgegen.ir import Rounding
from edgegen.reference.golden import run_golden
from edgegen.zoo import models
from edgegen.zoo.train import train

HERE = Path(__file__).parent


def small_conv_net():
    """Every operator of the spine: BN fold, stride, padding, ReLU6, avg pool,
    a stand-alone ReLU after a pool, flatten into a permuted Linear."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU6(),
        nn.Conv2d(6, 10, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(10, 12, 3), nn.AvgPool2d(2, padding=1, count_include_pad=False),
        nn.Flatten(), nn.Linear(12 * 3 * 3, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10),
    )


class FunctionalNet(nn.Module):
    """Pooling written as functions, as published forward() methods do:
    F.max_pool2d (ceil_mode), F.avg_pool2d, F.adaptive_avg_pool2d."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, 2, ceil_mode=True)  # 28 -> 14
        x = F.avg_pool2d(F.relu6(self.conv2(x)), 2)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, (7, 7)), 1))


FACTORIES = {"lenet300": models.lenet300, "lenet5": models.lenet5, "smallconv": small_conv_net,
             "functional": FunctionalNet, "separable": separable_net, "residual": ResidualNet,
             "shuffle": ShuffleUnit, "fire": FireNet}
_trained_cache = {}


def make_model(kind: str, weights: str, dataset):
    torch.manual_seed(3)
    model = FACTORIES[kind]()
    if weights == "trained":
        if kind not in _trained_cache:
            _trained_cache[kind] = train(model, dataset, epochs=1, max_train_samples=3000,
                                         progress=False).state_dict()
        model.load_state_dict(_trained_cache[kind])
    else:  # random weights, with BatchNorm statistics that are not the identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("kind", sorted(FACTORIES))
@pytest.mark.parametrize("weights", ["trained", "random"])
def test_golden_equals_host_c(kind, weights, fashion, tmp_path):
    model = make_model(kind, weights, fashion)
    result = deploy(model, kind, fashion, tmp_path / "out",
                    quantize_options=QuantizeOptions(calib_samples=300),
                    verify_options=VerifyOptions(test_samples=300, random_samples=300),
                    log=lambda *_: None)
    assert result.comparison.vectors == 600
    assert result.comparison.bit_exact, result.comparison.line("host")
    assert result.c_accuracy == result.golden_accuracy
    if weights == "trained":
        # one short epoch: well above chance (0.1), and int8 keeps what float learnt
        assert result.float_accuracy > 0.2
        assert abs(result.golden_accuracy - result.float_accuracy) < 0.05
    out = tmp_path / "out"
    for name in (f"{kind}.h", f"{kind}.c", f"{kind}_weights.c", "runtime/eg_runtime.h",
                 "model.qgraph.npz", "report.md", "report.json"):
        assert (out / name).is_file(), name


class LogSoftmaxNet(FunctionalNet):
    def forward(self, x):
        return F.log_softmax(super().forward(x), dim=1)


def test_a_dropped_final_softmax_is_reported(fashion, tmp_path):
    """--drop-softmax: the C computes the logits, bit-exact, the accuracy is
    the softmax model's (same argmax), and the report says what was left out."""
    model = LogSoftmaxNet().eval()
    result = deploy(model, "logsoftmax", fashion, tmp_path / "out",
                    quantize_options=QuantizeOptions(calib_samples=100, drop_softmax=True),
                    verify_options=VerifyOptions(test_samples=100, random_samples=20),
                    log=lambda *_: None)
    assert result.comparison.bit_exact
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Import: the final log_softmax (log_softmax) was dropped on request" in report


class SoftmaxNet(FunctionalNet):
    def forward(self, x):
        return F.softmax(super().forward(x), dim=1)


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("weights", ["trained", "random"])
@pytest.mark.parametrize("net", [SoftmaxNet, LogSoftmaxNet])
def test_a_final_softmax_is_int8_softmax_bit_exact(net, weights, rounding, fashion, tmp_path):
    """TFLite's int8 SOFTMAX / LOG_SOFTMAX at the output: C == golden on
    every byte, the output on TFLite's grid, the predictions the logits'."""
    logits_model = make_model("functional", weights, fashion)
    model = net().eval()
    model.load_state_dict(logits_model.state_dict())
    options = QuantizeOptions(calib_samples=200, rounding=rounding)
    result = deploy(model, "softmax", fashion, tmp_path / "out", quantize_options=options,
                    verify_options=VerifyOptions(test_samples=300, random_samples=100),
                    log=lambda *_: None)
    assert result.comparison.bit_exact, result.comparison.line("host")
    assert result.c_accuracy == result.golden_accuracy
    q = quantize_model(model, "softmax", fashion, options)
    log = net is LogSoftmaxNet
    assert type(q.nodes[-1].op).__name__ == ("QLogSoftmax" if log else "QSoftmax")
    out = q.tensor(q.output).qparams
    assert (out.scale, out.zero_point) == ((16 / 256, 127) if log else (1 / 256, -128))
    values = run_golden(q, int8_inputs(q, fashion, fashion.test_inputs[:300])).astype(float)
    probabilities = np.exp((values - 127) / 16) if log else (values + 128) / 256
    sums = probabilities.sum(axis=1)
    assert (sums > 0.8).all() and (sums < 1.2).all()
    if weights == "trained":
        assert abs(result.golden_accuracy - result.float_accuracy) < 0.05


def test_a_concat_joined_in_place_is_bit_exact_and_saves_ram(fashion, tmp_path):
    """expand1's output is written where the joined tensor starts and spread
    out by the concat: C == golden, and the arena is smaller than with
    separate buffers."""
    from edgegen.plan.arena import plan_memory

    torch.manual_seed(3)
    model = WideFireNet().eval()
    q = quantize_model(model, "widefire", fashion, QuantizeOptions(calib_samples=100))
    cat = next(i for i, n in enumerate(q.nodes) if type(n.op).__name__ == "QConcat")
    joined = plan_memory(q)
    assert joined.concats_in_place == (cat,)
    assert joined.arena_size < plan_memory(q, concat_in_place=False).arena_size
    result = deploy(model, "widefire", fashion, tmp_path / "out",
                    quantize_options=QuantizeOptions(calib_samples=100),
                    verify_options=VerifyOptions(test_samples=200, random_samples=100),
                    log=lambda *_: None)
    assert result.comparison.bit_exact, result.comparison.line("host")
    source = (tmp_path / "out" / "widefire.c").read_text()
    assert "eg_concat_s8" in source


def test_single_rounding_is_bit_exact_and_differs_from_double(fashion, tmp_path):
    model = make_model("lenet5", "trained", fashion)
    outputs = {}
    for rounding in Rounding:
        opts = QuantizeOptions(calib_samples=200, rounding=rounding)
        result = deploy(model, "lenet5", fashion, tmp_path / rounding.value,
                        quantize_options=opts,
                        verify_options=VerifyOptions(test_samples=200, random_samples=100),
                        log=lambda *_: None)
        assert result.comparison.bit_exact
        q = quantize_model(model, "lenet5", fashion, opts)
        outputs[rounding] = run_golden(q, int8_inputs(q, fashion, fashion.test_inputs[:200]))
    # The modes are really different arithmetic: some logits differ by one.
    diff = outputs[Rounding.DOUBLE].astype(int) - outputs[Rounding.SINGLE].astype(int)
    assert np.abs(diff).max() == 1


def test_generation_is_deterministic(fashion, tmp_path):
    model = make_model("smallconv", "random", fashion)
    texts = []
    for run in ("a", "b"):
        q = quantize_model(model, "smallconv", fashion, QuantizeOptions(calib_samples=100))
        emit(q, tmp_path / run)
        files = sorted(p for p in (tmp_path / run).rglob("*") if p.suffix in (".c", ".h"))
        texts.append({p.relative_to(tmp_path / run): p.read_bytes() for p in files})
    assert texts[0] == texts[1]
    assert len(texts[0]) >= 9


def _generated(fashion, tmp_path, kind="smallconv"):
    model = make_model(kind, "random", fashion)
    q = quantize_model(model, kind, fashion, QuantizeOptions(calib_samples=100))
    folder = tmp_path / "gen"
    lowered = emit(q, folder)
    return q, lowered.sources, lowered.memory, folder


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_generated_c_compiles_without_warnings(compiler, fashion, tmp_path):
    require_tool(compiler, compiler)
    _, sources, _, folder = _generated(fashion, tmp_path)
    for flags in (["-O2"], ["-Os", "-Wshadow", "-Wcast-qual", "-Wstrict-prototypes"]):
        objects = []
        for src in [folder / f"{sources.prefix}.c", folder / f"{sources.prefix}_weights.c",
                    *sorted((folder / "runtime").glob("*.c"))]:
            obj = tmp_path / (src.stem + ".o")
            r = subprocess.run([compiler, *WARNING_FLAGS, *flags, "-c", f"-I{folder}",
                                f"-I{folder / 'runtime'}", str(src), "-o", str(obj)],
                               capture_output=True, text=True)
            assert r.returncode == 0 and r.stderr == "", r.stderr
            objects.append(obj)
        assert objects


@pytest.mark.parametrize("kind", ["smallconv", "lenet5"])
def test_generated_c_is_clean_under_asan_and_ubsan(kind, fashion, tmp_path):
    q, sources, plan, folder = _generated(fashion, tmp_path, kind)
    p = sources.prefix.upper()
    exe = compile_executable(
        [HERE / "sanitizer_driver.c", folder / f"{sources.prefix}.c",
         folder / f"{sources.prefix}_weights.c", *sorted((folder / "runtime").glob("*.c"))],
        [folder, folder / "runtime"], tmp_path / "driver", opt="-O1",
        extra_flags=("-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                     f'-DEG_HEADER="{sources.prefix}.h"', f"-DEG_INVOKE={sources.prefix}_invoke",
                     f"-DEG_INPUT_SIZE={p}_INPUT_SIZE", f"-DEG_OUTPUT_SIZE={p}_OUTPUT_SIZE",
                     f"-DEG_ARENA_SIZE={p}_ARENA_SIZE"),
    )
    rng = np.random.default_rng(5)
    vectors = np.concatenate([
        int8_inputs(q, fashion, fashion.test_inputs[:40]),
        rng.integers(-128, 128, size=(40, 28, 28, 1)).astype(np.int8),
        np.full((1, 28, 28, 1), -128, np.int8), np.full((1, 28, 28, 1), 127, np.int8),
    ])
    (tmp_path / "in.bin").write_bytes(vectors.tobytes())
    r = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == str(len(vectors))
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8).reshape(len(vectors), -1)
    np.testing.assert_array_equal(got, run_golden(q, vectors).reshape(len(vectors), -1))
