"""`python -m edgeprune` (and `torchrun -m edgeprune train ...`)."""

from edgeprune.cli import main

main()
