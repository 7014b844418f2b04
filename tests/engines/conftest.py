"""Tiny random-weight checkpoints, built once per session and loaded like real ones."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reelserve.core.render import Engine, Mode
from reelserve.engines.ltx2 import LTX2Engine
from reelserve.engines.wan_animate import WanAnimateEngine


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def engines(models_dir: Path) -> dict[Mode, Engine]:
    """The ``tiny`` profile's engines: checkpoints built, pipelines loaded and resident."""
    from reelserve.engines import open_engines

    started = time.perf_counter()
    opened = open_engines("tiny", models_dir)
    built = time.perf_counter()
    for engine in {id(engine): engine for engine in opened.values()}.values():
        assert isinstance(engine, LTX2Engine | WanAnimateEngine)
        engine.warm()
    loaded = time.perf_counter()
    print(f"\ntiny engines: build {built - started:.1f} s, load {loaded - built:.1f} s")
    return opened


@pytest.fixture(scope="session")
def ltx2(engines: dict[Mode, Engine]) -> LTX2Engine:
    engine = engines[Mode.TEXT]
    assert isinstance(engine, LTX2Engine)
    return engine


@pytest.fixture(scope="session")
def wan_animate(engines: dict[Mode, Engine]) -> WanAnimateEngine:
    engine = engines[Mode.MOTION]
    assert isinstance(engine, WanAnimateEngine)
    return engine
