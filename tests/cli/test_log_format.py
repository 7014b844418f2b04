"""``--log-format`` of the server commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelserve.cli.main import app


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_unknown_log_format_is_a_usage_error(tmp_path: Path, command: str) -> None:
    result = CliRunner().invoke(app, [command, "--log-format", "yaml", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "must be one of text, json" in result.output
    assert not (tmp_path / "reelserve.db").exists()  # refused before anything started
