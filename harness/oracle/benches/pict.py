"""Runs Microsoft PICT (through PyPI's pypict) on one model file, for the covering bench.

    python pict.py MODEL ORDER

Prints the generation's wall time in seconds on the first line, then PICT's rows, one a
line, tab-separated values as PICT writes them (its header line dropped). The time is
PICT's own run (model parsing, generation, output), taken in this process, so Python's
start-up is not counted against PICT. No random seed is passed: PICT's default run.
"""

import sys
import time

import pypict.capi


def main() -> None:
    model, order = sys.argv[1], int(sys.argv[2])
    started = time.perf_counter()
    out = pypict.capi.execute([model, "/o:{}".format(order)])
    seconds = time.perf_counter() - started
    lines = [line for line in out.splitlines() if line.strip()]
    sys.stdout.write("{:.6f}\n".format(seconds))
    for line in lines[1:]:
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
