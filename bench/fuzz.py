"""The long fuzz: schemathesis, driven by /openapi.json, against a real API and worker.

    python -m bench.fuzz [--minutes 10] [--max-examples 200] [--seed 1]

The same run as tests/system/test_openapi_fuzz.py (what is left out and why:
tests/openapi_fuzz.py), with many more cases per operation and a time budget. Prints the
summary (operations, cases, failures) and exits non-zero on any finding; the full report is
kept in the printed folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.openapi_fuzz import fuzz, fuzzed_cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget of the run")
    parser.add_argument("--max-examples", type=int, default=200, help="cases per operation")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="genqueue-fuzz-"))
    cluster = fuzzed_cluster(out / "cluster")
    try:
        run = fuzz(
            cluster.url,
            out,
            seed=args.seed,
            max_examples=args.max_examples,
            max_time_s=args.minutes * 60,
            timeout_s=args.minutes * 60 + 600,
        )
    finally:
        cluster.stop()
    (out / "output.txt").write_text(run.output)
    print(run.output if run.returncode else run.summary)
    print(f"full output and report: {out}")
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
