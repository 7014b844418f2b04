"""A generation crosses the internal routes as JSON and comes back equal."""

from __future__ import annotations

import json

from reelserve.core.ledger import Split
from reelserve.core.records import Generation
from reelserve.core.status import Status
from reelserve.core.work_wire import generation_from_wire, generation_to_wire
from reelserve.worker.remote import internal_base


def test_a_generation_survives_the_trip_through_json() -> None:
    gen = Generation(
        id="gen_1",
        workspace_id="ws_1",
        model="kling-ai/kling-v2.6",
        mode="text",
        status=Status.IN_PROGRESS,
        input={"prompt": "x", "image_url": "blob:uploads/ws_1/a.png"},
        plan={"mode": "text", "prompt": "x", "media": {"image_url": "blob:uploads/ws_1/a.png"}},
        price=20,
        reserved=Split(5, 15),
        usage=Split(0, 0),
        progress=40,
        attempt=2,
        max_attempts=3,
        cancel_requested=True,
        created_at=1_700_000_000.25,
        started_at=1_700_000_001.5,
        lease_owner="wrk_a",
        lease_expires_at=1_700_000_031.5,
    )
    wire = json.loads(json.dumps(generation_to_wire(gen)))
    assert wire["status"] == "IN_PROGRESS"
    assert wire["reserved"] == {"subscription": 5, "permanent": 15}
    assert generation_from_wire(wire) == gen


def test_fields_a_newer_server_adds_are_ignored() -> None:
    gen = Generation(
        id="gen_2",
        workspace_id="ws_1",
        model="kling-ai/kling-v2.6",
        mode="text",
        status=Status.IN_QUEUE,
        input={},
        plan={},
        price=1,
        reserved=Split(0, 1),
        usage=Split(0, 0),
        progress=0,
        attempt=0,
        max_attempts=3,
        cancel_requested=False,
        created_at=1.0,
    )
    wire = {**generation_to_wire(gen), "priority": 5}
    assert generation_from_wire(wire) == gen


def test_the_api_url_may_be_given_with_or_without_the_public_prefix() -> None:
    for url in ("http://h:8000", "http://h:8000/", "http://h:8000/api/v1", "http://h:8000/api/v1/"):
        assert internal_base(url) == "http://h:8000/internal/v1"
    assert internal_base("https://h/video/api/v1") == "https://h/video/internal/v1"
