"""``reelserve workers token create|list|revoke`` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelserve.cli.main import app
from reelserve.core.errors import Unauthorized
from reelserve.services.worker_tokens import authenticate_worker
from reelserve.settings import Settings
from reelserve.store import SqlWorkerTokens, connect

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_worker_token_lifecycle(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = run("workers", "token", "create", "--name", "gpu-host-1", *data)
    assert code == 0, out
    token = out.strip()
    assert token.startswith("rsw_")
    assert len(out.splitlines()) == 1  # only the token, so scripts can capture it
    tokens = SqlWorkerTokens(connect(Settings(data_dir=tmp_path).db_url))
    token_id = authenticate_worker(tokens, f"Bearer {token}")

    code, listing = run("workers", "token", "list", *data)
    assert code == 0, listing
    assert token[:12] in listing
    assert token not in listing
    assert "active" in listing
    assert "gpu-host-1" in listing
    assert token_id in listing

    code, out = run("workers", "token", "revoke", token[:12], *data)
    assert code == 0, out
    code, listing = run("workers", "token", "list", *data)
    assert "revoked" in listing
    with pytest.raises(Unauthorized):
        authenticate_worker(tokens, f"Bearer {token}")

    code, out = run("workers", "token", "revoke", token[:12], *data)
    assert code == 1
    assert "no active worker token" in out
