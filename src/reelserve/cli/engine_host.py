"""Where the worker's engines run: in the worker's own process or in a spawned engine process.

``engine_process = "auto"`` keeps the ``tiny`` and ``fake`` profiles (and any profile of tiny
random-weight builds) inline: their renders take a fraction of a second and spawning an
engine process (a fresh interpreter importing torch and diffusers, then opening the engines)
would add seconds to every start for no isolation worth having. Every other profile runs its
engines in a child process.
"""

from __future__ import annotations

from collections.abc import Mapping

from reelserve.core.render import Engine, Mode
from reelserve.settings import Settings
from reelserve.worker.messages import EngineFactory
from reelserve.worker.supervisor import EngineProcessConfig, start_engine_process

ENGINE_PROCESS_CHOICES = ("auto", "child", "inline")
INLINE_BY_DEFAULT = frozenset({"tiny", "fake"})


def runs_in_child(settings: Settings) -> bool:
    choice = settings.engine_process
    if choice not in ENGINE_PROCESS_CHOICES:
        raise ValueError(
            f"engine_process must be one of {', '.join(ENGINE_PROCESS_CHOICES)}, not {choice!r}"
        )
    if choice == "auto":
        if settings.profile in INLINE_BY_DEFAULT:
            return False
        from reelserve.engines import get_profile

        # A profile of tiny random-weight builds (a test or CPU profile of one's own) renders
        # in a fraction of a second, like ``tiny``: no engine process for it either.
        return not get_profile(settings.profile).random_weights
    return choice == "child"


def engine_factory(settings: Settings) -> EngineFactory:
    """What the engine process calls to open the profile's engines."""
    if settings.profile == "fake":
        return EngineFactory(
            "reelserve.engines.fake:fake_engines",
            {"steps": settings.fake_steps, "seconds_per_step": settings.fake_step_s},
        )
    return EngineFactory(
        "reelserve.engines:open_engines",
        {"profile_name": settings.profile, "models_dir": settings.models_dir},
    )


def engines_in_child(settings: Settings) -> tuple[Mapping[Mode, Engine], bool]:
    """Stand-ins for the engines of a started engine process, and whether they carry random
    weights. The process is stopped when the interpreter exits."""
    if settings.profile != "fake":
        from reelserve.engines import get_profile

        get_profile(settings.profile)  # an unknown name fails here, before a process starts
    _, engines = start_engine_process(
        engine_factory(settings),
        EngineProcessConfig(
            scratch_dir=settings.data_dir / "tmp" / "engine",
            cancel_grace_s=settings.cancel_grace_s,
            min_free_fraction=settings.engine_min_free_fraction,
        ),
    )
    return engines, any(engine.random_weights for engine in engines.values())
