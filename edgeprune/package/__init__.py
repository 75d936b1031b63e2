"""App bundles: ``edgeprune package RUN_DIR --app android`` and the re-check of a bundle dir or zip."""

from edgeprune.package.bundle import APPS, BundleResult, build_bundle
from edgeprune.package.verify import GoldenCheck, VerifyReport, verify_bundle

__all__ = ["APPS", "BundleResult", "GoldenCheck", "VerifyReport", "build_bundle", "verify_bundle"]
