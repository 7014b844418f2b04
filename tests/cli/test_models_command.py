"""``reelserve models pull | list | check`` as a subprocess, on the tiny profile's real
checkpoints (built offline) and on profile files that point at local folders. The hub cannot
be reached from tests: the hub cases run with HF_HUB_OFFLINE=1 and must fail clearly."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import clean_env, command

# Builds and loads (tiny) model checkpoints.
pytestmark = pytest.mark.slow

Run = Callable[..., subprocess.CompletedProcess[str]]


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args),
        cwd=cwd,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder after ``reelserve models pull tiny``."""
    models = tmp_path_factory.mktemp("models")
    result = run("models", "pull", "tiny", "--models-path", str(models), cwd=models)
    assert result.returncode == 0, result.stderr
    assert "every checkpoint is in" in result.stdout
    return models


def test_check_before_pull_names_what_is_missing(tmp_path: Path) -> None:
    result = run("models", "check", "tiny", "--models-path", str(tmp_path / "m"), cwd=tmp_path)
    assert result.returncode == 1
    assert "tiny:ltx2 is not in" in result.stderr
    assert "tiny:wan_animate_2 is not in" in result.stderr
    assert "reelserve models pull tiny" in result.stderr


def test_pull_builds_tiny_and_list_shows_it_present_with_sizes(pulled: Path) -> None:
    assert (pulled / "tiny" / "ltx2" / "model_index.json").is_file()
    result = run("models", "list", "tiny", "--models-path", str(pulled), cwd=pulled)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()[1:]]
    assert [(line[0].strip(), line[1]) for line in lines] == [
        ("tiny:ltx2", "present"),
        ("tiny:wan_animate_2", "present"),
    ]
    assert all(line[2].endswith("B") and not line[2].startswith("0 ") for line in lines)
    # Pulling again finds everything there and builds nothing.
    again = run("models", "pull", "tiny", "--models-path", str(pulled), cwd=pulled)
    assert again.returncode == 0
    assert "building" not in again.stderr
    assert again.stderr.count("present in") == 2


def test_check_loads_every_component_of_tiny(pulled: Path) -> None:
    result = run("models", "check", "tiny", "--models-path", str(pulled), cwd=pulled)
    assert result.returncode == 0, result.stderr
    assert "every checkpoint loads" in result.stdout
    assert result.stderr.count("every component loads") == 2


def _local_profile(folder: Path, checkpoint: str) -> Path:
    path = folder / "local.toml"
    path.write_text(
        "[modes.text-to-video]\n"
        'family = "ltx2"\n'
        f'checkpoint = "{checkpoint}"\n'
        "steps = 4\n"
        "guidance = 1.0\n"
    )
    return path


def test_check_a_profile_file_pointing_at_a_local_folder(pulled: Path, tmp_path: Path) -> None:
    shutil.copytree(pulled / "tiny" / "ltx2", tmp_path / "my-ltx2")
    profile = _local_profile(tmp_path, "./my-ltx2")
    ok = run("models", "check", str(profile), "--models-path", str(tmp_path), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "profile local: every checkpoint loads" in ok.stdout

    listed = run("models", "list", str(profile), "--models-path", str(tmp_path), cwd=tmp_path)
    assert f"{tmp_path / 'my-ltx2'}\tpresent" in listed.stdout

    for weights in (tmp_path / "my-ltx2" / "vocoder").glob("*.safetensors"):
        weights.unlink()
    broken = run("models", "check", str(profile), "--models-path", str(tmp_path), cwd=tmp_path)
    assert broken.returncode == 1
    assert "component 'vocoder' (LTX2Vocoder) does not load" in broken.stderr


def test_a_missing_local_folder_cannot_be_pulled(tmp_path: Path) -> None:
    profile = _local_profile(tmp_path, "./nowhere")
    result = run("models", "pull", str(profile), "--models-path", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "used in place and cannot be pulled" in result.stderr


def test_pulling_a_hub_profile_offline_fails_clearly(tmp_path: Path) -> None:
    result = run(
        "models",
        "pull",
        "ltx2",
        "--models-path",
        str(tmp_path),
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 1
    assert "diffusers/LTX-2.3-Distilled-Diffusers: cannot download" in result.stderr
    assert "HF_HUB_OFFLINE=1" in result.stderr
    assert not (tmp_path / "hub" / "diffusers--LTX-2.3-Distilled-Diffusers").exists()


def test_check_of_a_hub_profile_without_weights_names_each_checkpoint(tmp_path: Path) -> None:
    result = run("models", "check", "ltx2", "--models-path", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    for hub_id in (
        "diffusers/LTX-2.3-Distilled-Diffusers",
        "diffusers/LTX-2.3-Diffusers",
        "Wan-AI/Wan2.2-Animate-2-14B-Diffusers",
    ):
        assert f"checkpoint {hub_id} is not in" in result.stderr


def test_an_invalid_profile_file_is_a_usage_error(tmp_path: Path) -> None:
    profile = _local_profile(tmp_path, "owner/name").read_text().replace("steps = 4", "steps = 0")
    (tmp_path / "bad.toml").write_text(profile)
    result = run("models", "check", str(tmp_path / "bad.toml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "profile bad: modes.text-to-video.steps: must be a positive integer" in result.stderr


def test_a_worker_with_an_invalid_profile_stops_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[modes.text-to-video]\nfamily = "ltx2"\nsteps = 1\n')
    result = run("worker", "--profile", "bad.toml", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "profile bad: modes.text-to-video.standard.checkpoint: is required" in result.stderr
