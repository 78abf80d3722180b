"""PamC's relative error against the exact loss and its time as N grows (contrastkit.bench)."""

from contrastkit.bench.pamc_error import main

if __name__ == "__main__":
    main()
