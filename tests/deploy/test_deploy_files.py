"""The deployment files hold together: deploy/compose.yaml parses, its services run real
`reelserve` commands with real flags, every REELSERVE_* variable is a real setting, the
proxy and the Dockerfile agree with it, and the bucket set-up script works against a real
S3-compatible server. (Docker is not run here; `docker compose config` checks the rest.)"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from reelserve.cli.main import app
from reelserve.settings import Settings
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The flags of remote workers, which a GPU worker in scale-out uses.
REMOTE_WORKER_FLAGS = {"--api-url", "--worker-token"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def command_flags(args: list[str]) -> tuple[str, set[str]]:
    """(the subcommand path, the flags it accepts) for ``reelserve <args>``."""
    command: Any = typer.main.get_command(app)
    path = []
    for token in args:
        subcommands = getattr(command, "commands", {})  # a group's
        if token not in subcommands:
            break
        command = subcommands[token]
        path.append(token)
    flags = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    return " ".join(path), flags


def assert_real_flags(args: list[str]) -> None:
    path, flags = command_flags(args)
    assert path, f"not a reelserve command: {args}"
    used = {arg for arg in args if arg.startswith("--")}
    assert used <= flags, f"reelserve {path} has no {used - flags}"


def reelserve_lines(script: str) -> list[list[str]]:
    """The arguments of each `reelserve ...` command in a shell script: the program
    itself, `--entrypoint reelserve SERVICE ...` and `docker run ... reelserve:TAG ...`."""
    lines = []
    for line in script.splitlines():
        words = shlex.split(line.split(">")[0], comments=True) if line.strip() else []
        for at, word in enumerate(words):
            if word == "reelserve" or word.startswith("reelserve:"):
                skip = 2 if at and words[at - 1] == "--entrypoint" else 1
                lines.append(words[at + skip :])
                break
    return lines


def test_the_services_of_a_scaled_out_deployment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "seaweedfs", "init", "api", "proxy", "worker"}
    images = " ".join(str(s.get("image", "")) for s in services.values()).lower()
    assert "postgres" in images
    assert "seaweedfs" in images
    assert "caddy" in images
    assert "minio" not in images
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["api"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]


def test_the_api_replicas_run_serve_with_real_flags(compose: dict[str, Any]) -> None:
    command = compose["services"]["api"]["command"]
    assert command[:2] == ["serve", "--no-worker"]
    assert_real_flags(command)
    assert command[command.index("--database-url") + 1].startswith("postgresql+psycopg://")
    assert command[command.index("--blob-url") + 1].startswith("s3://")
    # And the help a person would read lists them too.
    env = {**os.environ, "COLUMNS": "200"}
    shown = subprocess.run(
        [sys.executable, "-m", "reelserve", "serve", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    for flag in ("--no-worker", "--host", "--port", "--database-url", "--blob-url"):
        assert flag in shown


def test_the_set_up_runs_real_commands(compose: dict[str, Any]) -> None:
    script = compose["services"]["init"]["command"][0]
    lines = reelserve_lines(script)
    assert [line[:2] for line in lines] == [
        ["db", "upgrade"],
        ["keys", "list"],
        ["keys", "create"],
        ["credits", "grant"],
    ]
    for line in lines:
        assert_real_flags(line)
    assert "python /opt/reelserve/create_bucket.py" in script


def test_the_worker_speaks_to_the_api_with_a_token(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    command = worker["command"]
    assert command[0] == "worker"
    assert set(command) >= REMOTE_WORKER_FLAGS
    assert "--database-url" not in command
    assert "REELSERVE_DATABASE_URL" not in (worker.get("environment") or {})
    _, flags = command_flags(command)
    if not flags >= REMOTE_WORKER_FLAGS:
        pytest.skip("this build's `reelserve worker` has no remote-worker flags yet")
    assert_real_flags(command)


def test_every_reelserve_variable_is_a_setting(compose: dict[str, Any]) -> None:
    names = {f"REELSERVE_{f.name.upper()}" for f in fields(Settings)}
    used = set(re.findall(r"\bREELSERVE_[A-Z0-9_]+\b", (DEPLOY / "compose.yaml").read_text()))
    used -= {"REELSERVE_IMAGE", "REELSERVE_CUDA_IMAGE"}  # compose's own: which image to run
    assert used
    assert used <= names, used - names
    env = compose["x-reelserve-env"]
    assert env["REELSERVE_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert env["REELSERVE_S3_ADDRESSING_STYLE"] == "path"


def test_the_proxy_and_the_images_match_the_services(compose: dict[str, Any]) -> None:
    caddy = (DEPLOY / "Caddyfile").read_text()
    api = compose["services"]["api"]["command"]
    assert f"dynamic a api {api[api.index('--port') + 1]}" in caddy
    assert "reverse_proxy seaweedfs:8333" in caddy
    proxy_volumes = compose["services"]["proxy"]["volumes"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy_volumes
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.MULTILINE))
    assert {"torch-cpu", "torch-cuda", "app"} <= stages
    assert "FROM torch-${TORCH} AS app" in dockerfile
    assert "cu128" in dockerfile
    for name, torch in (("api", "cpu"), ("init", "cpu"), ("worker", "cuda")):
        build = compose["services"][name]["build"]
        assert build["target"] == "app"
        assert build["args"]["TORCH"] == torch
    assert "COPY deploy/create_bucket.py /opt/reelserve/create_bucket.py" in dockerfile


@pytest.mark.s3
def test_the_bucket_script_creates_the_bucket_once(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("create_bucket", DEPLOY / "create_bucket.py")
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    env = {
        "REELSERVE_BLOB_URL": "s3://reelserve-deploy-test/media",
        "REELSERVE_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "REELSERVE_S3_REGION": REGION,
        "REELSERVE_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "REELSERVE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "REELSERVE_S3_ADDRESSING_STYLE": "path",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert script.main(["--wait", "5"]) == 0
    assert script.main(["--wait", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "bucket reelserve-deploy-test: created",
        "bucket reelserve-deploy-test: already there",
    ]
    names = [b["Name"] for b in s3_server.admin.list_buckets()["Buckets"]]
    assert "reelserve-deploy-test" in names
    # An unreachable store is reported, not hung on.
    monkeypatch.setenv("REELSERVE_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    assert script.main(["--wait", "0"]) == 1


def test_the_walkthrough_uses_real_commands() -> None:
    """Every `reelserve ...` line of docs/deploy.md names a real command and real flags
    (`workers` and the remote-worker flags only where this build has them)."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    lines = [line for block in blocks for line in reelserve_lines(block.replace("\\\n", " "))]
    assert len(lines) >= 5
    _, worker_flags = command_flags(["worker"])
    remote = worker_flags >= REMOTE_WORKER_FLAGS
    seen = set()
    for line in lines:
        path, _ = command_flags(line)
        seen.add(line[0])
        if not remote:  # `workers` and the worker's remote flags come with remote workers
            if not path and line[0] == "workers":
                continue
            line = [word for word in line if word not in REMOTE_WORKER_FLAGS]
        assert_real_flags(line)
    assert {"keys", "credits", "workers", "db", "worker"} <= seen
    assert "docker compose -f deploy/compose.yaml config" in text
