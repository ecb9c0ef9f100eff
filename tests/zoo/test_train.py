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
    assert evaluate(results[0], tiny_dataset.test_images, tiny_dataset.test_labels) > 0.5


def test_augmentation_keeps_pixels_and_shape():
    images = torch.arange(2 * 5 * 5, dtype=torch.uint8).reshape(2, 5, 5)
    out = _augment(images, 1, True, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0}


def test_recipes_cover_the_zoo():
    from edgegen.zoo.models import ZOO

    assert set(RECIPES) == set(ZOO)


def test_smoke_fashion_mnist_one_epoch():
    from edgegen.data import load_dataset

    require_dataset()
    ds = load_dataset()
    torch.manual_seed(0)
    model = train(lenet300(), ds, epochs=1, batch_size=64, lr=2e-3, progress=False, max_train_samples=2000)
    accuracy = evaluate(model, ds.test_images[:2000], ds.test_labels[:2000])
    assert accuracy > 0.6  # chance is 0.1


def test_lr_factor_warmup_then_cosine():
    from edgegen.zoo.train import Schedule, _lr_factor

    factors = [_lr_factor(Schedule.COSINE, step, 14, 4) for step in range(14)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[-1] > 0
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))
    assert _lr_factor(Schedule.STEP, 9, 10, 0) == 0.01
    assert _lr_factor(Schedule.CONSTANT, 5, 10, 0) == 1.0
