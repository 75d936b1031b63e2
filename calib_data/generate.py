"""Write the synthetic (not medical) default dataset of edgeprune as PNG folders, to look at or to reuse.

Usage (from the repository root):  python calib_data/generate.py [--out DIR] [--seed 0]
The default --out, calib_data/fundus-synth, is not committed (git ignores it); when present with seed 0 the
pipeline reads it instead of generating its own copy in the user cache. The output is byte-identical on every
run with the same seed and edgeprune version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.data.synthetic import CLASS_NAMES, generate_fundus_synth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "fundus-synth")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = generate_fundus_synth(args.out, seed=args.seed)
    print(f"wrote {args.out}")
    print("split  " + " ".join(f"{c:>8}" for c in CLASS_NAMES) + "    total")
    for split, per_class in counts.items():
        print(f"{split:<6} " + " ".join(f"{n:>8}" for n in per_class) + f" {sum(per_class):>8}")


if __name__ == "__main__":
    main()
