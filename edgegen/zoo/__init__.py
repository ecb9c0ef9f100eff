"""The model zoo: classic small networks, their training recipes and checkpoints."""

from edgegen.zoo.checkpoints import (
    cache_dir,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    trained_zoo_model,
)
from edgegen.zoo.models import ZOO, lenet5, lenet300
# The function ``train`` is not re-exported: it would shadow the module
# ``edgegen.zoo.train``; import it from there.
from edgegen.zoo.train import RECIPES, TrainRecipe, evaluate
from edgegen.zoo.user_model import load_user_model

__all__ = [
    "RECIPES",
    "ZOO",
    "TrainRecipe",
    "cache_dir",
    "checkpoint_path",
    "evaluate",
    "lenet5",
    "lenet300",
    "load_checkpoint",
    "load_user_model",
    "save_checkpoint",
    "trained_zoo_model",
]
