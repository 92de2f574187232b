"""The examples run as documented: a kind of one's own, registered with --kinds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Cluster

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]


def test_wordcount_kind_registered_with_kinds_flag_runs(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, {"PYTHONPATH": str(ROOT)})
    cluster.start_api(extra=["--kinds", "examples.wordcount"])
    try:
        cluster.start_worker(queues="text", kinds="examples.wordcount")
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.argv = ['x', 'b', 'a', 'b']; "
                f"from examples.wordcount import main; main({cluster.url!r})",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=cluster.env,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "succeeded {'words': 3, 'top': [['b', 2], ['a', 1]]}"
    finally:
        cluster.stop()
