"""The playground's files are served at the root without a key, beside an unchanged API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reelserve.api import create_app
from reelserve.settings import Settings
from reelserve.store import SqlStore


@pytest.fixture
def client(settings: Settings, sqlite_store: SqlStore) -> Iterator[TestClient]:
    app = create_app(settings, store=sqlite_store, require_worker=False)
    with TestClient(app) as test_client:
        yield test_client


def test_root_serves_the_page_without_a_key(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>reelserve playground</title>" in response.text
    # Relative links, so the page also works behind a path prefix.
    assert 'src="playground/app.js"' in response.text
    assert 'href="playground/app.css"' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy


@pytest.mark.parametrize(
    ("path", "content_type", "sample"),
    [
        ("/playground/app.js", "text/javascript; charset=utf-8", "generation/sse/"),
        ("/playground/app.css", "text/css; charset=utf-8", ":focus-visible"),
    ],
)
def test_assets_have_their_content_types(
    client: TestClient, path: str, content_type: str, sample: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert sample in response.text


@pytest.mark.parametrize(
    "path",
    ["/playground/index.html", "/playground/nope.js", "/playground/..%2Frouter.py", "/nope"],
)
def test_other_paths_are_json_404s(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_api_and_probes_are_unaffected(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/api/v1/healthz").json() == {"status": "ok"}
    assert client.get("/api/v1/credits").status_code == 401  # the API still wants its key

    doc = client.get("/api/v1/openapi.json")
    assert doc.status_code == 200
    assert doc.headers["content-type"] == "application/json"
    paths = doc.json()["paths"]
    assert "/api/v1/generation/kling-ai/kling-v2.6" in paths
    assert "/api/v1/generation/sse/kling-ai/kling-v2.6" in paths
    assert "/" not in paths
    assert not any(path.startswith("/playground") for path in paths)
    assert "KlingV26Input" in doc.json()["components"]["schemas"]
