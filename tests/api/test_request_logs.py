"""JSON logs with request ids: from the API's create to the worker's completion, through
the real app, store and embedded worker (FakeEngine for the GPU model)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from reelserve.core import log_context
from reelserve.observability.logs import handler
from tests.api.conftest import ServiceFactory


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, as the server's JSON lines."""
    stream = io.StringIO()
    root = logging.getLogger()
    out = handler("json", stream)
    level = root.level
    root.addHandler(out)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(out)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_create_and_completion_logs_share_the_request_id(
    make_service: ServiceFactory, json_log: io.StringIO
) -> None:
    service = make_service()
    response = service.create({"prompt": "a cat"}, headers={"X-Request-ID": "trace-42.a:b"})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "trace-42.a:b"
    gen_id = response.json()["id"]
    assert service.wait(gen_id)["status"] == "COMPLETED"
    # The record reaches COMPLETED in the same transaction the worker then logs after.
    service.wait(gen_id, until=lambda _: "completed" in json_log.getvalue())

    logged = lines(json_log)
    for line in logged:
        assert {"time", "level", "logger", "message"} <= set(line)
    mine = [line for line in logged if line.get("generation_id") == gen_id]
    created = [line for line in mine if line["message"].startswith("generation created")]
    completed = [line for line in mine if line["message"] == f"task {gen_id} completed"]
    assert len(created) == 1
    assert len(completed) == 1
    assert created[0]["logger"] == "reelserve.services.submit"
    assert completed[0]["logger"] == "reelserve.worker.runner"
    assert created[0]["request_id"] == completed[0]["request_id"] == "trace-42.a:b"
    assert created[0]["level"] == "INFO"


@pytest.mark.parametrize("given", [None, "", "x" * 129, "has space", "new\nline"])
def test_unusable_request_ids_are_replaced(
    make_service: ServiceFactory, json_log: io.StringIO, given: str | None
) -> None:
    service = make_service(worker=False)
    headers = {} if given is None else {"X-Request-ID": given}
    response = service.client.get("/api/v1/credits", headers={**service.auth, **headers})
    assert response.status_code == 200
    made = response.headers["x-request-id"]
    assert made != given
    assert len(made) == 32
    int(made, 16)  # a fresh random hex id


def test_every_route_answers_with_a_request_id_even_errors(make_service: ServiceFactory) -> None:
    service = make_service(worker=False)
    unauthorized = service.client.get("/api/v1/credits", headers={"X-Request-ID": "r-1"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["x-request-id"] == "r-1"
    assert service.client.get("/healthz").headers["x-request-id"]


def test_json_lines_carry_exceptions_and_leave_out_unknown_ids() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("reelserve.test.json")
    out = handler("json", stream)
    logger.addHandler(out)
    logger.propagate = False
    try:
        logger.warning("no ids here")
        with log_context.bound(generation="gen_1"):
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                logger.exception("it broke: %s", "badly")
    finally:
        logger.removeHandler(out)
        logger.propagate = True
    plain, failed = lines(stream)
    assert "request_id" not in plain
    assert "generation_id" not in plain
    assert plain["level"] == "WARNING"
    assert failed["message"] == "it broke: badly"
    assert failed["generation_id"] == "gen_1"
    assert "RuntimeError: boom" in failed["exception"]


def test_text_lines_append_the_ids() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("reelserve.test.text")
    out = handler("text", stream)
    logger.addHandler(out)
    logger.propagate = False
    try:
        with log_context.bound(request="r-9", generation="gen_2"):
            logger.warning("hello")
    finally:
        logger.removeHandler(out)
        logger.propagate = True
    assert (
        stream.getvalue()
        .rstrip()
        .endswith("WARNING reelserve.test.text: hello [request_id=r-9 generation_id=gen_2]")
    )


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log_format: must be one of text, json"):
        handler("yaml")


def test_a_500_quotes_the_request_id_in_its_answer_and_its_log(
    make_service: ServiceFactory, json_log: io.StringIO
) -> None:
    service = make_service(worker=False)

    def broken() -> dict[str, Any]:
        raise RuntimeError("a bug")  # stands for any unhandled error in a route

    service.client.app.state.reelserve.readiness = broken  # type: ignore[attr-defined]
    response = service.client.get("/readyz", headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-1"
    assert "bug-1" in response.json()["message"]
    logged = [line for line in lines(json_log) if line["logger"] == "reelserve.api"]
    assert logged[-1]["request_id"] == "bug-1"
    assert "RuntimeError: a bug" in logged[-1]["exception"]
