"""Builds the webhook deliverer of a server process from Settings (composition only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelserve.blobs import FileLinks, UrlSigning
from reelserve.core.ports import Blobs
from reelserve.core.records import present
from reelserve.services.webhooks import Deliverer, DeliveryPolicy
from reelserve.settings import Settings
from reelserve.store import SqlStore
from reelserve.store.webhook_outbox import SqlWebhookOutbox

API_PREFIX = "/api/v1"


def file_links_base(settings: Settings) -> str:
    """Where file links in a webhook point: PUBLIC_URL, else the address served on."""
    root = settings.public_url or f"http://{settings.host}:{settings.port}"
    return root.rstrip("/") + API_PREFIX


def build_deliverer(store: SqlStore, settings: Settings, blobs: Blobs) -> Deliverer:
    from reelserve.media.webhook_post import post_webhook

    # The same links a GET gives: presigned on S3, HMAC-signed /files links otherwise.
    links = FileLinks(blobs, UrlSigning(settings.signing_secret(), settings.file_url_ttl_s))
    base = file_links_base(settings)

    def render(snapshot: Mapping[str, Any]) -> dict[str, Any]:
        return present(snapshot, lambda key: links.sign(base, key))

    def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        return post_webhook(
            url,
            body,
            headers,
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.allow_private_urls,
        )

    return Deliverer(
        SqlWebhookOutbox(store.engine),
        send,
        render,
        DeliveryPolicy(
            # Longer than any attempt (resolution plus the request), so no second
            # deliverer takes over a delivery still being sent.
            lease_s=3 * settings.webhook_timeout_s + 30.0,
            retry_base_s=settings.webhook_retry_s,
            give_up_after_s=settings.webhook_give_up_s,
        ),
    )
