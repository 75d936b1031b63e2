"""Training and fine-tuning (CPU by default, CUDA when present, DDP under torchrun)."""

from edgeprune.train.length import scaled_epochs
from edgeprune.train.loop import TensorData, TrainResult, TrainSettings, predict_logits, train_model
from edgeprune.train.selection import SelectionRule, pick_epoch

__all__ = ["SelectionRule", "TensorData", "TrainResult", "TrainSettings", "pick_epoch", "predict_logits",
           "scaled_epochs", "train_model"]
