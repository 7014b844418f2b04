"""The ``reelserve`` admin commands through their real entry point (in-process runner)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from reelserve.cli.main import app
from reelserve.services.keys import authenticate
from reelserve.settings import Settings
from reelserve.store import SqlStore, connect, head_revision

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_keys_lifecycle(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = run("keys", "create", "--workspace", "studio", *data)
    assert code == 0, out
    key = out.strip()
    assert key.startswith("rs_")
    assert len(out.splitlines()) == 1  # only the key, so scripts can capture it
    store = SqlStore(connect(Settings(data_dir=tmp_path).db_url))
    assert authenticate(store, f"Bearer {key}").workspace.name == "studio"

    code, listing = run("keys", "list", "--workspace", "studio", *data)
    assert code == 0
    assert key[:12] in listing
    assert key not in listing  # keys are never shown again
    assert "active" in listing

    code, out = run("keys", "revoke", key[:12], *data)
    assert code == 0, out
    code, listing = run("keys", "list", "--workspace", "studio", *data)
    assert "revoked" in listing
    code, out = run("keys", "revoke", key[:12], *data)
    assert code == 1


def test_credits_grant_and_show(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = run(
        "credits",
        "grant",
        "--workspace",
        "studio",
        "--subscription",
        "300",
        "--period-end",
        "2099-12-31",
        "--permanent",
        "50",
        *data,
    )
    assert code == 0, out
    assert "subscription 300" in out
    assert "2099-12-31" in out
    assert "permanent 50" in out
    assert "total 350" in out
    code, out = run(
        "credits",
        "grant",
        "--workspace",
        "studio",
        "--subscription",
        "100",
        "--period-end",
        "2100-01-31",
        *data,
    )
    assert "subscription 100" in out  # a new period does not roll the old one over
    code, out = run("credits", "show", "--workspace", "studio", *data)
    assert code == 0
    assert "total 150" in out


def test_bad_arguments_say_what_is_wrong(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = run(
        "credits", "grant", "--workspace", "s", "--subscription", "5", "--period-end", "soon", *data
    )
    assert code == 2
    assert "ISO date" in out
    code, out = run("credits", "grant", "--workspace", "s", *data)
    assert code == 2
    code, out = run("credits", "show", "--workspace", "nobody", *data)
    assert code == 1
    assert "no workspace" in out


def test_db_upgrade_reports_the_revision(tmp_path: Path) -> None:
    code, out = run("db", "upgrade", "--data-dir", str(tmp_path))
    assert code == 0
    assert f"revision {head_revision()}" in out


def test_keys_rotate(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, old = run("keys", "create", "--workspace", "studio", *data)
    assert code == 0, old
    old = old.strip()
    code, out = run("keys", "rotate", old[:12], "--grace", "3600", *data)
    assert code == 0, out
    new = out.strip()
    assert new.startswith("rs_")
    assert new != old
    store = SqlStore(connect(Settings(data_dir=tmp_path).db_url))
    for key in (old, new):  # the old key works during the grace period
        assert authenticate(store, f"Bearer {key}").workspace.name == "studio"
    code, listing = run("keys", "list", "--workspace", "studio", *data)
    assert "active until" in listing
    code, out = run("keys", "rotate", new[:12], *data)
    assert code == 0, out
    code, listing = run("keys", "list", "--workspace", "studio", *data)
    assert listing.count("revoked") == 1
    code, out = run("keys", "rotate", "rs_nosuchkey", *data)
    assert code == 1


def test_webhooks_secret_show_and_rotate(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = run("webhooks", "secret", "--workspace", "studio", *data)
    assert code == 1  # no such workspace yet
    assert "no workspace" in out
    run("keys", "create", "--workspace", "studio", *data)
    code, first = run("webhooks", "secret", "--workspace", "studio", *data)
    assert code == 0, first
    assert first.startswith("whsec_")
    code, again = run("webhooks", "secret", "-w", "studio", *data)
    assert again == first  # stable until rotated
    code, rotated = run("webhooks", "secret", "-w", "studio", "--rotate", *data)
    assert code == 0
    assert rotated.startswith("whsec_")
    assert rotated != first
    code, shown = run("webhooks", "secret", "-w", "studio", *data)
    assert shown == rotated
