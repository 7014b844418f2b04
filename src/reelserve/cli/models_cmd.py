"""``reelserve models pull | list | check``: a profile's weights, ahead of serving.

The logic lives in ``reelserve.engines.weights``; this module parses arguments and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelserve.cli.server_options import DataDir

if TYPE_CHECKING:
    from reelserve.engines.profiles import Profile

models_app = typer.Typer(
    help="Model weights: download or build what a profile needs, list and verify them.",
    no_args_is_help=True,
)

ProfileArg = Annotated[
    str, typer.Argument(help="A built-in profile (tiny, ltx2, wan) or a path to a .toml file.")
]
ModelsPath = Annotated[
    Path | None,
    typer.Option(
        "--models-path",
        help="Models folder (default <data-dir>/models).",
        envvar="REELSERVE_MODELS_PATH",
        show_envvar=True,
    ),
]


def _models_dir(data_dir: Path | None, models_path: Path | None) -> Path:
    from reelserve.settings import from_env

    return from_env(None, data_dir=data_dir, models_path=models_path).models_dir


def _profile(name: str) -> Profile:
    from reelserve.engines import ProfileError, get_profile

    try:
        return get_profile(name)
    except ProfileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


@models_app.command("pull")
def pull(profile: ProfileArg, data_dir: DataDir = None, models_path: ModelsPath = None) -> None:
    """Download (hub) or build (tiny) every checkpoint PROFILE needs into the models folder.

    Resumable: run it again after an interruption. Fails at once under HF_HUB_OFFLINE=1.
    """
    from reelserve.engines.weights import WeightsError
    from reelserve.engines.weights import pull as pull_weights

    chosen = _profile(profile)
    models_dir = _models_dir(data_dir, models_path)
    try:
        pull_weights(chosen, models_dir, lambda line: typer.echo(line, err=True))
    except WeightsError as exc:
        typer.echo(f"profile {chosen.name}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"profile {chosen.label}: every checkpoint is in {models_dir}")


@models_app.command("list")
def list_models(
    profile: Annotated[
        str | None, typer.Argument(help="One profile; default every built-in one.")
    ] = None,
    data_dir: DataDir = None,
    models_path: ModelsPath = None,
) -> None:
    """Each profile's checkpoints: the modes using them, present or missing, size on disk."""
    from reelserve.engines import available_profiles
    from reelserve.engines.weights import survey

    models_dir = _models_dir(data_dir, models_path)
    names = [profile] if profile is not None else available_profiles()
    for name in names:
        chosen = _profile(name)
        typer.echo(f"{chosen.label}:")
        for report in survey(chosen, models_dir):
            state = "present" if report.present else "missing"
            typer.echo(
                f"  {report.checkpoint}\t{state}\t{_size(report.size_bytes)}\t"
                f"{report.family}\t{report.folder}\t{', '.join(report.used_by)}"
            )


@models_app.command("check")
def check(profile: ProfileArg, data_dir: DataDir = None, models_path: ModelsPath = None) -> None:
    """Load every component of PROFILE's checkpoints from disk (no network); exit 1 naming
    what is missing or broken."""
    from reelserve.engines.weights import check as check_weights

    chosen = _profile(profile)
    problems = check_weights(
        chosen, _models_dir(data_dir, models_path), lambda line: typer.echo(line, err=True)
    )
    if problems:
        for problem in problems:
            typer.echo(f"profile {chosen.name}: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"profile {chosen.label}: every checkpoint loads")
