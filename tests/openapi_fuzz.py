"""Schemathesis against a running genqueue API: what is fuzzed, what is not and why, and how
the run is made (the short run in tests/system/test_openapi_fuzz.py, the long one in
bench/fuzz.py).

Every check runs (``[checks] enabled = true``, the config form of ``--checks all``), with
these exceptions, each because no schema can say what decides the answer:

- ``GET /v1/events`` is not fuzzed: a Server-Sent Events stream does not end, so there is no
  response to check (tests/system/test_lifecycle.py and friends cover it).
- The seed adapters (tags naming a seed, ``genqueue/api/compat``) are not fuzzed: they keep
  their seeds' shapes and statuses on purpose (tests/compat covers each one).
- ``positive_data_acceptance`` is off where a well-formed request can still be refused for
  its content: ``POST /v1/uploads`` (the bytes must decode as an image),
  ``POST /v1/collections/{name}/search`` (its image likewise) and
  ``POST /v1/collections/{name}/items`` (a folder must exist under the input root).
- 413 counts as a rejection and as an allowed answer to valid data: a body over
  ``GENQUEUE_MAX_BODY_BYTES`` is refused whatever it says, and JSON Schema cannot bound a
  body's size in bytes.
- Times the schema cannot bound (no clock in JSON Schema) are kept valid, and long polls
  short, by ``tests/fuzz_hooks.py``. The coverage phase of those routes is off: its
  boundary values (``start_by`` 2000-01-01, a wait of 299 s) do not pass through hooks, and
  a ``start_by`` already past is refused (422) as its description says. Webhook URLs are
  pointed at loopback, which the fuzzed API may call (:func:`fuzzed_cluster`).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import Cluster

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
HOOKS_MODULE = "tests.fuzz_hooks"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOT_FUZZED_PATHS = ("/v1/events",)
SEED_TAGS = r".*\(seed \d+\).*"
# Routes with times the hooks bound: no coverage phase (see the module's docstring).
CLOCKED = (("/v1/tasks", "POST"), ("/v1/batches", "POST"), ("/v1/tasks/{task_id}/wait", "GET"))
NO_ACCEPTANCE_CHECK = (
    "/v1/uploads",
    "/v1/collections/{name}/search",
    "/v1/collections/{name}/items",
)

CONFIG = """\
[checks]
enabled = true

[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", 401, 403, 404, 409, 413, 429, "5xx"]
"""


def config_text() -> str:
    operations = "".join(
        f'\n[[operations]]\ninclude-path = "{path}"\n'
        "checks.positive_data_acceptance.enabled = false\n"
        for path in NO_ACCEPTANCE_CHECK
    )
    clocked = "".join(
        f'\n[[operations]]\ninclude-path = "{path}"\ninclude-method = "{method}"\n'
        "phases.coverage.enabled = false\n"
        for path, method in CLOCKED
    )
    return CONFIG + operations + clocked


@dataclass(frozen=True)
class FuzzRun:
    returncode: int
    output: str

    @property
    def summary(self) -> str:
        """The closing lines: operations, phases, failures and the test case counts."""
        head, _, tail = self.output.rpartition("SUMMARY")
        return tail if head else self.output[-4000:]


def fuzzed_cluster(folder: Path) -> Cluster:
    """An API and a worker for the debug kinds to fuzz, started (the fuzzer's other tasks
    wait in line, so a run does not render its random 2048-pixel pictures on 2 cores).
    Webhooks are on, signed with a throwaway secret and allowed to reach loopback, where
    ``tests/fuzz_hooks.py`` points every well-formed webhook URL."""
    webhooks = {
        "GENQUEUE_WEBHOOKS__SECRET": "whsec_" + base64.b64encode(b"fuzz" * 8).decode(),
        "GENQUEUE_WEBHOOKS__ALLOW_PRIVATE": "true",
    }
    folder.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(folder, webhooks)
    try:
        cluster.start_api()
        cluster.start_worker(queues="debug", concurrency=2)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def fuzz(
    base_url: str,
    work_dir: Path,
    *,
    seed: int,
    max_examples: int,
    max_time_s: float | None = None,
    timeout_s: float = 600.0,
) -> FuzzRun:
    """Run ``schemathesis run`` on ``base_url``'s /openapi.json; the exit code is 0 only if
    nothing was found."""
    config = work_dir / "schemathesis.toml"
    config.write_text(config_text())
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--seed",
        str(seed),
        "--max-examples",
        str(max_examples),
        # One worker: hypothesis describes strategies with ast.parse, which Python 3.11
        # breaks on when two threads do it at once ("AST constructor recursion depth").
        "--workers",
        "1",
        "--exclude-tag-regex",
        SEED_TAGS,
        *[arg for path in NOT_FUZZED_PATHS for arg in ("--exclude-path", path)],
        "--report-dir",
        str(work_dir / "report"),
        "--no-color",
        "--request-timeout",
        "30",
    ]
    if max_time_s is not None:
        command += ["--max-time", str(int(max_time_s))]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS_MODULE, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        command,
        cwd=work_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return FuzzRun(done.returncode, done.stdout + done.stderr)
