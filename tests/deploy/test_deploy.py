"""deploy/ as shipped: the nginx site in front of two real API processes, the systemd units
under ``systemd-analyze verify``, and every ``command`` of the compose files run as a real
process against real local servers (only hosts, ports and paths adapted to loopback)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
import yaml

from genqueue.settings import Settings, WorkerSettings
from tests.helpers import (
    FAST_LEASES,
    Cluster,
    backend_url,
    forget,
    free_port,
    stop_processes,
    unique_name,
    wait_until,
)

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GENQUEUE = Path(sys.executable).parent / "genqueue"  # the venv's console script
UNIT_GENQUEUE = "/opt/genqueue/venv/bin/genqueue"


def require_tool(name: str, path: str | None, install: str) -> str:
    """The tool's path; skip loudly when it is missing, fail under CI=true."""
    if path and os.access(path, os.X_OK):
        return path
    reason = f"{name} is not installed; install it with: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- nginx ---------------------------------------------------------------------------------


@dataclass
class Proxy:
    url: str
    api_ports: tuple[int, int]
    access_log: Path
    cluster: Cluster


def render_site(conf: str, listen_port: int, api_ports: tuple[int, int]) -> str:
    """The shipped site with its listener and upstream servers moved to this test's ports."""
    assert "    listen 80;\n" in conf and "    listen [::]:80;\n" in conf
    conf = conf.replace("    listen 80;\n", f"    listen 127.0.0.1:{listen_port};\n")
    conf = conf.replace("    listen [::]:80;\n", "")
    servers = re.findall(r"^    server \S+:\d+ ", conf, flags=re.M)
    assert len(servers) == 2, "the upstream should list two API instances"
    for old, port in zip(servers, api_ports, strict=True):
        conf = conf.replace(old, f"    server 127.0.0.1:{port} ", 1)
    return conf


def main_conf(prefix: Path, site: Path) -> str:
    """A private nginx around the site, as /etc/nginx/nginx.conf would include it, in a hostile
    http context: it ignores the API's ``X-Accel-Buffering: no`` and compresses event streams
    (gzip holds buffered output back until its buffer fills), so only the site's own
    ``proxy_buffering off`` and ``gzip off`` keep event streams live."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    log_format upstream '$upstream_addr $status $request_uri';
    access_log {prefix}/access.log upstream;
    proxy_ignore_headers X-Accel-Buffering;
    gzip on;
    gzip_min_length 0;
    gzip_types text/event-stream application/json;
    include {site};
}}
"""


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    nginx = require_tool(
        "nginx", shutil.which("nginx") or "/usr/sbin/nginx", "apt-get install -y nginx"
    )
    data = tmp_path_factory.mktemp("nginx-cluster")
    cluster = Cluster(data, extra_env={"GENQUEUE_WORKER__SHUTDOWN_GRACE_S": "1"})
    prefix = tmp_path_factory.mktemp("nginx")
    proc: subprocess.Popen[bytes] | None = None
    try:
        # Both APIs and the worker start at once; each API is waited for in its own thread.
        cluster.start_worker(concurrency=2)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(cluster.start_api)
            other = cluster.start_another_api()
            first.result()
        ports = (cluster.port, int(other.rsplit(":", 1)[1]))
        listen = free_port()
        site = prefix / "genqueue.conf"
        site.write_text(render_site((DEPLOY / "nginx/genqueue.conf").read_text(), listen, ports))
        conf = prefix / "nginx.conf"
        conf.write_text(main_conf(prefix, site))
        args = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen(args)
        wait_until(lambda: port_open(listen), 10, 0.05, "nginx to listen")
        yield Proxy(f"http://127.0.0.1:{listen}", ports, prefix / "access.log", cluster)
    finally:
        if proc is not None:
            stop_processes([proc])
        cluster.stop()


def test_nginx_streams_events_live_while_the_task_runs(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        wait_until(
            lambda: any(w["status"] == "online" for w in http.get("/v1/workers").json()),
            30,
            0.1,
            "the worker to register",
        )
        submitted = http.post(
            "/v1/tasks", json={"kind": "debug.sleep", "payload": {"seconds": 2.0, "steps": 8}}
        )
        assert submitted.status_code == 201, submitted.text
        task_id = submitted.json()["id"]
        seen: list[str] = []
        with http.stream("GET", "/v1/events", params={"task_id": task_id}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            try:
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        seen.append(line.removeprefix("event: "))
                    if seen and seen[-1] == "task.progress":
                        # Read through nginx while the task still runs: the frame was not
                        # held back until the response ended.
                        assert http.get(f"/v1/tasks/{task_id}").json()["status"] == "running"
                        break
                    assert "task.succeeded" not in seen, f"no event before the end: {seen}"
            except httpx.ReadTimeout:
                pytest.fail(f"nginx held the event stream back (10 s without a frame): {seen}")
        assert seen[0] == "snapshot", seen
    # nginx logs the stream once it has closed both sides (and freed its upstream slot).
    wait_until(
        lambda: f"/v1/events?task_id={task_id}" in proxy.access_log.read_text(),
        10,
        0.05,
        "nginx to end the event stream",
    )


def test_nginx_balances_requests_across_both_apis(proxy: Proxy) -> None:
    marker = unique_name("balance")
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        for _ in range(8):
            assert http.get("/v1/queues", params={"probe": marker}).status_code == 200

    def logged() -> list[str] | None:  # nginx logs a request just after its answer went out
        lines = [ln for ln in proxy.access_log.read_text().splitlines() if marker in ln]
        return lines if len(lines) == 8 else None

    lines = wait_until(logged, 10, 0.02, "nginx to log the 8 requests")
    used = {line.split()[0] for line in lines}
    assert used == {f"127.0.0.1:{port}" for port in proxy.api_ports}


def test_nginx_body_limit_matches_the_upload_cap(proxy: Proxy) -> None:
    conf = (DEPLOY / "nginx/genqueue.conf").read_text()
    size = re.search(r"client_max_body_size (\d+)m;", conf)
    assert size is not None
    cap = Settings.model_fields["max_upload_bytes"].default
    assert int(size.group(1)) * 1024 * 1024 == cap
    assert f"exceeds {cap} bytes" in conf
    with httpx.Client(base_url=proxy.url, timeout=30) as http:
        # Over nginx's default 1 MiB but under the cap: reaches the API, which decodes it.
        corrupt = http.post("/v1/uploads", content=b"x" * (2 * 1024 * 1024))
        assert corrupt.status_code == 422, corrupt.text
        over = http.post("/v1/uploads", content=b"x" * (cap + 1))
        assert over.status_code == 413
        assert over.json()["error"] == "body_too_large"


# --- systemd -------------------------------------------------------------------------------


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) per line; systemd allows repeated keys, configparser does not."""
    section, out = "", []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key, value))
    return out


def values(path: Path, key: str) -> list[str]:
    return [v for s, k, v in unit_entries(path) if s == "Service" and k == key]


def test_systemd_units_verify_with_the_installed_genqueue(tmp_path: Path) -> None:
    analyze = require_tool(
        "systemd-analyze", shutil.which("systemd-analyze"), "apt-get install -y systemd"
    )
    names = ["genqueue-api.service", "genqueue-worker@.service"]
    for name in names:
        text = (DEPLOY / "systemd" / name).read_text()
        assert UNIT_GENQUEUE in text
        (tmp_path / name).write_text(text.replace(UNIT_GENQUEUE, str(GENQUEUE)))
    run = subprocess.run(
        [analyze, "verify", "genqueue-api.service", "genqueue-worker@gpu1.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "genqueue" not in output, f"systemd-analyze warned about the units:\n{output}"


def test_systemd_units_restart_and_stop_within_the_worker_grace() -> None:
    api = DEPLOY / "systemd/genqueue-api.service"
    worker = DEPLOY / "systemd/genqueue-worker@.service"
    for unit in (api, worker):
        assert "/etc/genqueue/genqueue.env" in values(unit, "EnvironmentFile")
        assert values(unit, "Restart") == ["always"]
        assert values(unit, "RestartPreventExitStatus") == ["78"]
        assert values(unit, "KillSignal") == ["SIGTERM"]
        assert values(unit, "NoNewPrivileges") == ["yes"]
        assert values(unit, "ProtectSystem") == ["strict"]
    (exec_start,) = values(worker, "ExecStart")
    assert exec_start.startswith(f"{UNIT_GENQUEUE} worker --name %i")
    # SIGTERM goes to the worker alone, which stops its pool; SIGKILL only after the grace.
    assert values(worker, "KillMode") == ["mixed"]
    grace_s = WorkerSettings.model_fields["shutdown_grace_s"].default
    (stop_s,) = values(worker, "TimeoutStopSec")
    assert float(stop_s) >= grace_s + 10


# --- docker compose ------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set: the default."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def adapt_env(environment: dict[str, str], data_dir: Path, hosts: dict[str, str]) -> dict[str, str]:
    """The service's environment on this machine: ``/data`` -> a temp dir, and each URL that
    names a compose service -> that server here, which must speak the same scheme."""
    env = {**os.environ, **FAST_LEASES, "GENQUEUE_LOG_LEVEL": "WARNING"}
    for key, raw in environment.items():
        value = interpolate(str(raw))
        parts = urlsplit(value)
        if parts.hostname in hosts:
            local = hosts[parts.hostname]
            assert urlsplit(local).scheme.startswith(parts.scheme), (key, value, local)
            value = local
        elif value == "/data" or value.startswith("/data/"):
            value = str(data_dir) + value.removeprefix("/data")
        env[key] = value
    return env


def run_command(
    command: list[str], env: dict[str, str], log: Path, port: int | None = None
) -> subprocess.Popen[bytes]:
    """A compose command as a process: ``genqueue`` is this virtualenv's, ``--port`` a free one."""
    args = [interpolate(a) for a in command]
    if args[0] == "genqueue":
        args[0] = str(GENQUEUE)
    if port is not None:
        args[args.index("--port") + 1] = str(port)
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def check_api_and_worker(
    compose: dict[str, Any],
    data_dir: Path,
    hosts: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
) -> None:
    """Start the api and worker services' commands (into ``procs``, which the caller stops),
    then prove the pair works: /health, the compose healthcheck, the worker registered, and a
    task run end to end."""
    services = compose["services"]
    port = free_port()
    api_env = adapt_env(services["api"]["environment"], data_dir, hosts)
    worker_env = adapt_env(services["worker"]["environment"], data_dir, hosts)
    api = run_command(services["api"]["command"], api_env, data_dir / "api.log", port)
    procs.append(api)
    worker = run_command(services["worker"]["command"], worker_env, data_dir / "worker.log")
    procs.append(worker)
    url = f"http://127.0.0.1:{port}"

    def logs() -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in data_dir.glob("*.log"))

    def healthy() -> bool:
        assert api.poll() is None and worker.poll() is None, logs()
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 30, 0.1, "the compose api command to answer /health")
    kind, *check = services["api"]["healthcheck"]["test"]
    assert kind == "CMD" and check[0] == "python"
    probe = [sys.executable, *(a.replace(":8000/", f":{port}/") for a in check[1:])]
    assert subprocess.run(probe, env=api_env, check=False, timeout=10).returncode == 0
    # Listening beyond loopback, the API asks for keys (GENQUEUE_AUTH=auto): the first one
    # is made as docs/deployment.md says, with the CLI against the same store.
    assert httpx.get(f"{url}/v1/tasks", timeout=5).status_code == 401
    made = subprocess.run(
        [str(GENQUEUE), "keys", "create", "--user", "ops", "--role", "operator"],
        env=api_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    [key] = [line for line in made.stdout.splitlines() if line.startswith("gq_")]
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=15, headers=headers) as http:
        wait_until(
            lambda: any(w["status"] == "online" for w in http.get("/v1/workers").json()),
            30,
            0.1,
            "the compose worker command to register",
        )
        task = http.post("/v1/tasks", json={"kind": "debug.echo", "payload": {"hi": 1}})
        assert task.status_code == 201, task.text
        done = http.get(f"/v1/tasks/{task.json()['id']}/wait", params={"timeout": 10}).json()
        assert done["status"] == "succeeded", logs()
    assert worker.poll() is None, logs()


def test_compose_redis_commands_run_redis_api_and_worker(tmp_path: Path) -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["worker"]["deploy"]["replicas"] >= 1
    assert services["worker"]["stop_grace_period"] == "45s"
    assert services["api"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "\nFROM python:3.11-slim\n" in (DEPLOY / "Dockerfile").read_text()
    redis_server = require_tool(
        "redis-server", shutil.which("redis-server"), "apt-get install -y redis-server"
    )
    port = free_port()
    command = [redis_server, *services["redis"]["command"][1:]]
    command += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL)]
    try:
        wait_until(lambda: port_open(port), 10, 0.05, "the compose redis command to listen")
        with redis.Redis(port=port) as client:
            assert client.config_get("appendonly") == {"appendonly": "yes"}
        hosts = {"redis": f"redis://127.0.0.1:{port}/0"}
        check_api_and_worker(compose, tmp_path, hosts, procs)
    finally:
        stop_processes(procs[1:])  # genqueue first, then its Redis
        stop_processes(procs[:1])


def test_compose_amqp_commands_run_api_and_worker_on_rabbitmq_and_postgres(
    tmp_path: Path,
) -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.amqp.yml").read_text())
    assert {"postgres", "rabbitmq", "api", "worker"} <= set(compose["services"])
    # backend_url skips (or fails under CI) when the shared server is unreachable.
    hosts = {"postgres": backend_url("postgres", tmp_path)}
    hosts["rabbitmq"] = backend_url("amqp", tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        check_api_and_worker(compose, tmp_path, hosts, procs)
    finally:
        stop_processes(procs)
        for url in hosts.values():
            forget(url)
