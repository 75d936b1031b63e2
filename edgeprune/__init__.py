"""edgeprune: prune, convert, verify and profile image CNNs for phones."""
__version__ = "0.1.0"
