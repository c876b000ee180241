"""`python -m helpers`: find, download if needed, verify and cache MNIST (what `make data` runs)."""

from helpers.data import main

raise SystemExit(main())
