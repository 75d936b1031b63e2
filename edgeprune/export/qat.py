"""Quantization-aware training through PT2E (``prepare_qat_pt2e``) for the int8 repair ladder.

The float model is exported once (inference graph, dynamic batch), its batch norms folded (into the preceding
convolution, or into a depthwise 1x1 conv where none precedes), so training only moves conv / linear weights
and biases under int8 fake quantization while the activation ranges track the data. The loss is cross-entropy
on the train labels plus distillation towards the float model's logits (the goal is to agree with it).
:meth:`QATSession.lowered` turns a snapshot into a full-int8 .tflite at any point, so the caller can judge each
epoch on the validation split and keep the first (or best) one.
"""

from __future__ import annotations

import copy
from typing import Any

from edgeprune.export.pt2e_int8 import batchnorm_to_depthwise, fold_conv_batchnorm, int8_quantizer


class QATSession:
    """One model under quantization-aware training; ``epoch()`` trains one pass, ``lowered()`` converts a copy."""

    def __init__(self, model: Any, train_x: Any, train_y: Any, calib: Any, seed: int = 0, lr: float = 1e-4,
                 batch: int = 32, distill: float = 1.0) -> None:  # fmt: skip
        import torch
        from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

        self.teacher = model.eval()
        self.x = torch.as_tensor(train_x).float()
        self.y = torch.as_tensor(train_y).long().reshape(-1)
        self.batch, self.distill, self.epochs = batch, distill, 0
        self.generator = torch.Generator().manual_seed(seed)
        calib = torch.as_tensor(calib).float()
        dim = torch.export.Dim("batch", min=1, max=max(2, batch, len(calib)))
        graph = torch.export.export(model, (self.x[:2],), dynamic_shapes=({0: dim},)).module()
        fold_conv_batchnorm(graph)
        batchnorm_to_depthwise(graph)
        self.quantizer = int8_quantizer(qat=True)
        self.prepared = prepare_qat_pt2e(graph, self.quantizer)
        with torch.no_grad():  # start the observers from the calibration images, as post-training int8 does
            for i in range(0, len(calib), batch):
                self.prepared(calib[i : i + batch])
        self.optimizer = torch.optim.Adam([p for p in self.prepared.parameters() if p.requires_grad], lr=lr)
        with torch.no_grad():
            self.targets = torch.cat([model(self.x[i : i + 256]) for i in range(0, len(self.x), 256)])

    def epoch(self) -> float:
        """One pass over the train split; returns the mean loss."""
        import torch
        import torch.nn.functional as F
        from torchao.quantization.pt2e import move_exported_model_to_train

        move_exported_model_to_train(self.prepared)
        order = torch.randperm(len(self.x), generator=self.generator)
        total, count = 0.0, 0
        for i in range(0, len(order), self.batch):
            idx = order[i : i + self.batch]
            if len(idx) < 2:
                continue
            out = self.prepared(self.x[idx])
            loss = F.cross_entropy(out, self.y[idx])
            if self.distill:
                teacher = F.softmax(self.targets[idx], dim=1)
                loss = loss + self.distill * F.kl_div(F.log_softmax(out, dim=1), teacher, reduction="batchmean")
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        self.epochs += 1
        return total / max(count, 1)

    def lowered(self, example: Any, io_layout: str = "NCHW") -> bytes:
        """The current state as a full-int8 flatbuffer (int8 I/O), the training copy left untouched."""
        import litert_torch
        import torch
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e import move_exported_model_to_eval
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

        snapshot = copy.deepcopy(self.prepared)
        quantized = move_exported_model_to_eval(convert_pt2e(move_exported_model_to_eval(snapshot),
                                                             fold_quantize=False))  # fmt: skip
        for sub in quantized.modules():
            sub.training = False
        example = example[:1].float()
        module: Any = quantized
        if io_layout == "NHWC":
            module = litert_torch.to_channel_last_io(quantized, args=[0])
            module.training = False  # .eval() would recurse into the exported graph, which refuses it
            example = example.permute(0, 2, 3, 1).contiguous()
        with torch.no_grad():
            return litert_torch.convert(
                module, (example,), quant_config=QuantConfig(pt2e_quantizer=self.quantizer)
            ).model_content()
