"""Per-rank time and memory of the distributed CLIP loss (contrastkit.bench)."""

from contrastkit.bench.distributed_scaling import main

if __name__ == "__main__":
    main()
