"""Codec throughput; see ``openlines.events.bench``. Run: ``python libs/events/bench_decode.py``."""

import sys

from openlines.events.bench import main

if __name__ == "__main__":
    main(sys.argv[1:])
