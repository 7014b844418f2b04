"""Engines: the only code that runs models (torch, diffusers).

Import rule: ``reelserve.engines`` imports only ``reelserve.core`` of this project. Importing the
package is cheap: torch and diffusers load when engines are opened, and model weights when an
engine renders its first job (or is warmed).

``open_profile(profile, models_dir)`` opens one engine per mode whose weights are present and
says why the others are missing. Modes with the same engine spec share one engine instance,
hence one copy of the weights.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from reelserve.core.render import Engine, Mode
from reelserve.engines.profile_files import ProfileError, builtin_names, load_profile
from reelserve.engines.profiles import EngineSpec, ModeSpec, Profile
from reelserve.engines.weights import (
    ENGINE_CLASSES,
    checkpoint_folder,
    engine_unavailable,
    missing_reason,
    stay_offline,
)

__all__ = [
    "OpenedEngines",
    "ProfileError",
    "available_profiles",
    "get_profile",
    "open_engines",
    "open_profile",
]

log = logging.getLogger(__name__)


class _EngineClass(Protocol):
    def __call__(
        self, *, name: str, spec: EngineSpec, folder: Path, random_weights: bool
    ) -> Engine: ...


def available_profiles() -> list[str]:
    """The built-in profiles' names (any ``.toml`` file path is accepted as well)."""
    return builtin_names()


def get_profile(name_or_path: str) -> Profile:
    """A built-in profile by name, or a profile file; raises ProfileError naming the key."""
    return load_profile(name_or_path)


@dataclass
class OpenedEngines:
    profile: Profile
    engines: dict[Mode, Engine] = field(default_factory=dict)
    # Modes the profile names but that cannot be served here, with the reason.
    missing: dict[Mode, str] = field(default_factory=dict)


def open_engines(profile_name: str, models_dir: Path) -> dict[Mode, Engine]:
    """Engines for the modes of ``profile_name`` that can be served (see open_profile)."""
    return open_profile(get_profile(profile_name), models_dir).engines


def open_profile(profile: Profile, models_dir: Path) -> OpenedEngines:
    """Engines for every mode of ``profile`` whose weights are present, and why the rest
    are missing.

    A random-weights profile builds its tiny checkpoints first if they are missing; any other
    checkpoint must be there already (``reelserve models pull``): nothing is downloaded, and
    the hub client is switched offline for the process. Pipelines load lazily.
    """
    stay_offline()
    opened = OpenedEngines(profile)
    shared: dict[EngineSpec, Engine] = {}
    for mode, mode_spec in profile.modes.items():
        problem = _unavailable(profile, mode_spec, models_dir)
        if problem is not None:
            opened.missing[mode] = problem
            log.warning("profile %s: %s not served: %s", profile.name, mode.value, problem)
            continue
        split = mode_spec.standard != mode_spec.pro
        engines = []
        for quality, spec in (("standard", mode_spec.standard), ("pro", mode_spec.pro)):
            engine = shared.get(spec)
            if engine is None:
                suffix = f"/{quality}" if split else ""
                engine = shared[spec] = _open_engine(profile, spec, models_dir, suffix)
            engines.append(engine)
        if split:
            from reelserve.engines.routing import ByQuality

            opened.engines[mode] = ByQuality(engines[0], engines[1])
        else:
            opened.engines[mode] = engines[0]
    return opened


def unavailable_modes(profile: Profile, models_dir: Path) -> dict[Mode, str]:
    """The modes of ``profile`` that cannot be served here, and why (opens no engine)."""
    missing = {}
    for mode, mode_spec in profile.modes.items():
        problem = _unavailable(profile, mode_spec, models_dir)
        if problem is not None:
            missing[mode] = problem
    return missing


def _unavailable(profile: Profile, mode_spec: ModeSpec, models_dir: Path) -> str | None:
    """Why the mode cannot be served here (engine not installed, weights absent), or None.
    Tiny checkpoints are built on the spot."""
    problems: list[str] = []
    absent: list[str] = []
    for spec in mode_spec.specs():
        reason = engine_unavailable(spec.family)
        if reason is not None:
            problems.append(reason)
        elif spec.checkpoint.tiny is not None:
            from reelserve.engines.tiny import ensure_tiny_checkpoint

            ensure_tiny_checkpoint(spec.family, checkpoint_folder(models_dir, spec.checkpoint))
        elif spec.checkpoint.hub is not None:
            if missing_reason(profile, spec.checkpoint, models_dir) is not None:
                absent.append(str(spec.checkpoint))
        else:
            problems.extend(filter(None, [missing_reason(profile, spec.checkpoint, models_dir)]))
    if absent:
        problems.append(
            f"{' and '.join(absent)} not pulled into {models_dir}; "
            f"run `reelserve models pull {profile.source or profile.name}`"
        )
    return "; ".join(dict.fromkeys(problems)) or None


def _open_engine(profile: Profile, spec: EngineSpec, models_dir: Path, suffix: str) -> Engine:
    folder = checkpoint_folder(models_dir, spec.checkpoint)
    module_name, class_name = ENGINE_CLASSES[spec.family]
    engine_class: _EngineClass = getattr(importlib.import_module(module_name), class_name)
    engine = engine_class(
        name=f"{profile.name}/{spec.family}{suffix}",
        spec=spec,
        folder=folder,
        random_weights=spec.checkpoint.tiny is not None,
    )
    log.info("engine %s ready to load from %s (%s)", engine.name, folder, profile.label)
    return engine
