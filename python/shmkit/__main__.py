"""python3 -m shmkit: the benchmark (see shmkit.bench)."""
import sys

from .bench import main

sys.exit(main())
