"""A worker whose profile names weights that are not on disk serves the modes it has, says
which it lacks in its registration, and the API reports it (``/readyz``, the 503)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reelserve.api import create_app
from reelserve.cli.embedded import background, build_worker, load_engines
from reelserve.core.render import Mode
from reelserve.engines import get_profile, open_profile
from reelserve.engines import weights as weights_module
from reelserve.settings import Settings
from reelserve.store import SqlStore
from tests.api.conftest import MODEL, MOTION_MODEL, assert_error

PARTIAL = """
[modes.text-to-video]
family = "ltx2"
checkpoint = "owner/ltx"
steps = 8
guidance = 1.0

[modes.image-to-video]
like = "text-to-video"

[modes.first-last-frame]
like = "text-to-video"

[modes.motion-control]
family = "wan_animate"
checkpoint = "./animate"
steps = 10
guidance = 1.0
"""


@pytest.fixture
def partial_profile(tmp_path: Path) -> Path:
    """Motion control's checkpoint is a local folder with a pipeline index (engines load
    weights on their first job, and none runs here); the LTX-2 one was never pulled."""
    (tmp_path / "animate").mkdir()
    (tmp_path / "animate" / "modular_model_index.json").write_text("{}")
    path = tmp_path / "partial.toml"
    path.write_text(PARTIAL)
    return path


def test_a_worker_serves_only_the_modes_whose_weights_are_present(
    partial_profile: Path, settings: Settings, sqlite_store: SqlStore, tmp_path: Path
) -> None:
    # Inline: the stand-in checkpoint has an index but no weights, so it must never load
    # (an engine process would load and warm it up at start).
    conf = Settings(
        **{
            **settings.__dict__,
            "profile": str(partial_profile),
            "models_path": tmp_path / "m",
            "engine_process": "inline",
        }
    )
    loaded = load_engines(conf)
    assert set(loaded.engines) == {Mode.MOTION}
    missing = loaded.capabilities["missing"]
    assert set(missing) == {"text-to-video", "image-to-video", "first-last-frame"}
    assert missing["text-to-video"] == (
        f"owner/ltx not pulled into {tmp_path / 'm'}; run `reelserve models pull {partial_profile}`"
    )

    worker = build_worker(
        conf,
        sqlite_store,
        loaded.engines,
        loaded.random_weights,
        capabilities=loaded.capabilities,
    )
    assert worker.models == [MOTION_MODEL]
    app = create_app(conf, store=sqlite_store)
    with background(sqlite_store, conf, worker), TestClient(app) as client:
        deadline = time.monotonic() + 10
        while not sqlite_store.served_models(60):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ready = client.get("/readyz").json()
        assert set(ready["models"]) == {MOTION_MODEL}
        assert ready["models"][MOTION_MODEL]["missing"] == missing
        assert "cannot serve text-to-video (owner/ltx not pulled" in ready["unserved"][MODEL]

        from reelserve.services.keys import create_key

        key = create_key(sqlite_store, "acme").key
        refused = client.post(
            f"/api/v1/generation/{MODEL}",
            json={"prompt": "a cat"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert_error(refused, 503, "VIDEO_GENERATION_PROVIDER_UNAVAILABLE", "model")
        assert "partial.toml') cannot serve text-to-video" in refused.json()["message"]


def test_a_family_whose_engine_is_not_installed_is_a_missing_mode(
    partial_profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stands in for an installation without one engine module: nothing fails at import."""
    monkeypatch.setitem(
        weights_module.ENGINE_CLASSES, "wan_animate", ("reelserve.engines.not_here", "Nope")
    )
    opened = open_profile(get_profile(str(partial_profile)), tmp_path / "m")
    assert opened.engines == {}
    assert "engine family 'wan_animate' is not installed here" in opened.missing[Mode.MOTION]
