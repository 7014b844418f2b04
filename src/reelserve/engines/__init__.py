"""Engines: the only code that runs models (torch, diffusers).

Import rule: ``reelserve.engines`` imports only ``reelserve.core`` of this project. Importing the
package is cheap: torch and diffusers load when engines are opened, and model weights when an
engine renders its first job (or is warmed).

``open_engines(profile, models_dir)`` returns one engine per mode. Modes with the same engine
spec share one engine instance, hence one copy of the weights.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Protocol

from reelserve.core.render import Engine, Mode
from reelserve.engines.profiles import PROFILES, EngineFamily, EngineSpec, Profile, get_profile

__all__ = ["available_profiles", "checkpoint_folder", "get_profile", "open_engines"]

log = logging.getLogger(__name__)

# Module and class per family, imported only when a profile uses the family.
_ENGINE_CLASSES: dict[EngineFamily, tuple[str, str]] = {
    "ltx2": ("reelserve.engines.ltx2", "LTX2Engine"),
    "wan_animate": ("reelserve.engines.wan_animate", "WanAnimateEngine"),
    "wan": ("reelserve.engines.wan", "WanEngine"),
}


class _EngineClass(Protocol):
    def __call__(
        self, *, name: str, spec: EngineSpec, folder: Path, random_weights: bool
    ) -> Engine: ...


def available_profiles() -> list[str]:
    return sorted(PROFILES)


def checkpoint_folder(models_dir: Path, profile: Profile, spec: EngineSpec) -> Path:
    return models_dir / profile.name / spec.checkpoint


def open_engines(profile_name: str, models_dir: Path) -> dict[Mode, Engine]:
    """Engines for every mode of ``profile_name``, with checkpoints under ``models_dir``.

    A random-weights profile builds its tiny checkpoints first if they are missing; any other
    profile expects its checkpoints to be there already. Pipelines load lazily.
    """
    profile = get_profile(profile_name)
    shared: dict[EngineSpec, Engine] = {}
    engines: dict[Mode, Engine] = {}
    for mode, spec in profile.engines.items():
        engine = shared.get(spec)
        if engine is None:
            engine = shared[spec] = _open_engine(profile, spec, models_dir)
        engines[mode] = engine
    return engines


def _open_engine(profile: Profile, spec: EngineSpec, models_dir: Path) -> Engine:
    folder = checkpoint_folder(models_dir, profile, spec)
    if profile.random_weights:
        from reelserve.engines.tiny import ensure_tiny_checkpoint

        ensure_tiny_checkpoint(spec.family, folder)
    elif not folder.is_dir():
        raise FileNotFoundError(
            f"checkpoint {spec.checkpoint!r} of profile {profile.name!r} is missing under "
            f"{models_dir}; fetch it before starting a worker"
        )
    module_name, class_name = _ENGINE_CLASSES[spec.family]
    engine_class: _EngineClass = getattr(importlib.import_module(module_name), class_name)
    engine = engine_class(
        name=f"{profile.name}/{spec.family}",
        spec=spec,
        folder=folder,
        random_weights=profile.random_weights,
    )
    log.info("engine %s ready to load from %s (%s)", engine.name, folder, profile.label)
    return engine
