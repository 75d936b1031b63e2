"""How long to fine-tune when no epoch count is given: a number of images seen, turned into bounded epochs."""

from __future__ import annotations

import math


def scaled_epochs(n_train: int, images: int, min_epochs: int, max_epochs: int) -> int:
    """``ceil(images / n_train)`` epochs, clamped to ``[min_epochs, max_epochs]``.

    A fixed epoch count gives a 500-image dataset a tenth of the updates a 5,000-image one gets; a budget in
    images seen gives both about the same number of optimiser steps, and the bounds keep tiny datasets from
    running for ever and huge ones from getting less than ``min_epochs`` passes.
    """
    if n_train <= 0:
        return min_epochs
    return int(min(max_epochs, max(min_epochs, math.ceil(images / n_train))))
