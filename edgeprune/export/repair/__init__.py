"""The int8 repair ladder: a list of typed rungs that turn a rejected full-int8 TFLite file into one that passes.

Public entry point: :func:`repair_int8` (with :class:`RepairInputs` and :func:`is_repairable`).
"""

from edgeprune.export.repair.base import Attempt, LadderRun, RepairConfig, RepairInputs, Rung
from edgeprune.export.repair.ladder import INT8_PRECISIONS, is_repairable, repair_int8
from edgeprune.export.repair.ranking import modules_in_tensor_name, rank_layers
from edgeprune.export.repair.rungs import LADDER, RUNGS

__all__ = ["INT8_PRECISIONS", "LADDER", "RUNGS", "Attempt", "LadderRun", "RepairConfig", "RepairInputs", "Rung",
           "is_repairable", "modules_in_tensor_name", "rank_layers", "repair_int8"]
