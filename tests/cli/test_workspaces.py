"""``reelserve workspaces set`` and ``list`` through the real entry point, on SQLite."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from reelserve.cli.main import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_set_and_list_caps_and_priorities(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    for name in ("studio", "lab"):
        assert run("keys", "create", "--workspace", name, *data)[0] == 0

    code, out = run("workspaces", "set", "lab", "--max-running", "2", "--priority", "5", *data)
    assert code == 0, out
    assert out.split() == ["lab", "max_running=2", "priority=5", "queued=0", "running=0"]

    code, out = run("workspaces", "list", *data)
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["lab", "studio"]
    assert "max_running=default" in lines[1]

    code, out = run("workspaces", "set", "lab", "--max-running", "0", *data)
    assert "max_running=none" in out
    assert "priority=5" in out  # an option not given stays as it was
    code, out = run("workspaces", "set", "lab", "--default-max-running", *data)
    assert "max_running=default" in out


def test_set_refuses_unknown_workspaces_and_empty_changes(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = run("workspaces", "set", "nobody", "--priority", "1", *data)
    assert code == 1
    assert "no workspace 'nobody'" in out
    code, out = run("workspaces", "set", "nobody", *data)
    assert code == 2
    code, out = run("workspaces", "set", "x", "--max-running", "-1", *data)
    assert code == 2
