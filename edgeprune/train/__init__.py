"""Training and fine-tuning (CPU by default, CUDA when present, DDP under torchrun)."""

from edgeprune.train.loop import TensorData, TrainResult, TrainSettings, predict_logits, train_model

__all__ = ["TensorData", "TrainResult", "TrainSettings", "predict_logits", "train_model"]
