"""InfoNCE / CLIP-loss scaling benchmark; see ``contrastkit.bench.infonce_scaling`` (--help)."""

import sys

from contrastkit.bench.infonce_scaling import main

if __name__ == "__main__":
    sys.exit(main())
