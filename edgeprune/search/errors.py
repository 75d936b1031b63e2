"""The search's own outcome error (light: the CLI imports it before torch loads)."""

from __future__ import annotations

from edgeprune.errors import EdgepruneError

EXIT_NO_TRIAL = 3


class ContractNotMet(EdgepruneError):
    """No trial met the contract (or the hard budgets); the CLI exits 3."""

    exit_code = EXIT_NO_TRIAL
