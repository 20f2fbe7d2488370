"""``iotml train | evaluate | models | batch | archive | retrain``: the batch path's commands.

TensorFlow is imported only inside the commands that run a model.
"""

from models.cli._batch import archive, batch
from models.cli._evaluate import evaluate
from models.cli._registry import models_group
from models.cli._retrain import retrain
from models.cli._train import train

__all__ = ["archive", "batch", "evaluate", "models_group", "retrain", "train"]
