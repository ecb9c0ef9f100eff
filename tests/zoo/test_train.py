import torch
from toolchain_support import require_dataset

from edgegen.zoo.models import lenet300
from edgegen.zoo.train import RECIPES, _augment, evaluate, train


def test_training_learns_and_is_deterministic(tiny_dataset):
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = train(lenet300(), tiny_dataset, epochs=2, batch_size=32, lr=3e-3, seed=3, progress=False)
        results.append(model)
        assert not model.training
    a, b = (m.state_dict() for m in results)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert evaluate(results[0], tiny_dataset) > 0.5


def test_augmentation_keeps_values_and_shape_and_moves_channels_together():
    images = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).reshape(2, 2, 5, 5) + 1
    out = _augment(images, 1, True, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.float32
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0.0}
    # channel 1 is channel 0 plus 25 wherever a pixel was kept: one shift per sample
    kept = out[:, 0] != 0
    assert torch.equal(out[:, 1][kept], out[:, 0][kept] + 25)


def test_unlabelled_data_needs_a_step_and_trains_with_one():
    from torch import nn

    from edgegen.data.datasets import Dataset, Layout, synthetic_dataset
    from edgegen.errors import UserError
    from edgegen.zoo.train import Loss

    inputs = synthetic_dataset((12,), train=64, test=8)  # random, but not marked synthetic:
    data = Dataset("unlabelled", None, inputs.train_inputs, inputs.test_inputs,
                   layout=Layout.FEATURES)
    model = nn.Sequential(nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 12))
    try:
        train(model, data, epochs=1, batch_size=16, progress=False)
    except UserError as exc:
        assert "has no labels" in str(exc) and "--train-step" in str(exc)
    else:
        raise AssertionError("training on unlabelled data without a loss did not fail")
    before = [p.detach().clone() for p in model.parameters()]
    train(model, data, epochs=1, batch_size=16, progress=False, loss=Loss.RECONSTRUCTION,
          max_shift=2)  # augmentation does not apply to feature vectors
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert evaluate(model, data) is None
    try:
        train(model, inputs, epochs=1, progress=False, loss=Loss.RECONSTRUCTION)
    except UserError as exc:
        assert "synthetic" in str(exc) and "pass --data PATH" in str(exc)
    else:
        raise AssertionError("training on synthetic inputs did not fail")


def test_recipes_cover_the_zoo():
    from edgegen.zoo.models import ZOO

    assert set(RECIPES) == set(ZOO)


def test_smoke_fashion_mnist_one_epoch():
    from edgegen.data import load_dataset

    require_dataset()
    ds = load_dataset()
    torch.manual_seed(0)
    model = train(lenet300(), ds, epochs=1, batch_size=64, lr=2e-3, progress=False, max_train_samples=2000)
    accuracy = evaluate(model, ds, limit=2000)
    assert accuracy > 0.6  # chance is 0.1


def test_lr_factor_warmup_then_cosine():
    from edgegen.zoo.train import Schedule, _lr_factor

    factors = [_lr_factor(Schedule.COSINE, step, 14, 4) for step in range(14)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[-1] > 0
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))
    assert _lr_factor(Schedule.STEP, 9, 10, 0) == 0.01
    assert _lr_factor(Schedule.CONSTANT, 5, 10, 0) == 1.0
