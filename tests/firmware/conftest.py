"""Fixtures for the board tests: small quantized models, a private cache."""

import pytest
import torch

from edgegen.jobs.quantize import QuantizeOptions, quantize_model
from edgegen.zoo import models

CALIBRATION_SAMPLES = 100


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Build the QEMU plugin into a cache of these tests, not the user's
    (module scope: other test folders keep the real cache)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEGEN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def qgraphs(fashion):
    """lenet300 and lenet5 with random weights (seed 0), quantized: the
    arithmetic and the sizes are those of trained models."""
    graphs = {}
    for name in ("lenet300", "lenet5"):
        torch.manual_seed(0)
        model = getattr(models, name)().eval()
        options = QuantizeOptions(calib_samples=CALIBRATION_SAMPLES)
        graphs[name] = quantize_model(model, name, fashion, options)
    return graphs
