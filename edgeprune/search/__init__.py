"""Accuracy-constrained compression search (issue 13): the fastest / smallest pruned model whose validation
scores meet the gate's contract. Sits at the pipeline layer: it uses prune, recovery, export and devices.
The package face stays light (the CLI imports the error before torch loads); the search is in ``driver``."""

from edgeprune.search.errors import ContractNotMet

__all__ = ["ContractNotMet"]
