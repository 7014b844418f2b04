"""The async twins against a real reelserve server on loopback (a smaller set than the
sync tests: the logic they share lives in one place)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelserve.client import (
    AsyncClient,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    Status,
)
from tests.client.conftest import FAST, Account
from tests.fixtures import LANDSCAPE_PNG

pytestmark = pytest.mark.anyio


async def test_async_stream_create_and_wait_follow_and_download(
    live: Account, tmp_path: Path
) -> None:
    async with live.async_client() as client:
        records = [r async for r in client.generations.stream(prompt="a cat")]
        assert records[0].status == Status.IN_QUEUE
        assert records[-1].status == Status.COMPLETED
        gen_id = records[0].id

        replay = [r async for r in client.generations.follow(gen_id)]
        assert [r.status for r in replay] == [r.status for r in records]

        done = await client.generations.create_and_wait(
            prompt="a dog", image=LANDSCAPE_PNG, generate_audio=False, poll_interval=0.05
        )
        assert done.status == Status.COMPLETED
        video = done.video
        assert video is not None
        assert (video.width, video.height, video.duration) == (1280, 720, 5.04)
        assert video.has_audio is False
        path = await client.generations.download(done, tmp_path / "a.mp4")
        assert path.read_bytes()[4:8] == b"ftyp"
        assert (await client.generations.get(gen_id)).status == Status.COMPLETED


async def test_async_list_running_cancel_and_credits(queued: Account) -> None:
    async with queued.async_client() as client:
        ids = [(await client.generations.create(prompt=f"p{i}")).id for i in range(3)]
        assert [i.id for i in await client.generations.running(limit=2)] == ids[:0:-1]
        page = await client.generations.list(limit=2)
        assert [r.id for r in page.items] == [ids[2], ids[1]]
        assert [r.id async for r in client.generations.iter_all(limit=2)] == ids[::-1]
        assert (await client.credits()).total == 940
        canceled = await client.generations.cancel(ids[0])
        assert canceled.status == Status.CANCELED
        assert (await client.credits()).total == 960
        with pytest.raises(ConflictError) as info:
            await client.generations.cancel(ids[0])
        assert info.value.record is not None
        same = await client.generations.create(prompt="x", idempotency_key="a-1")
        again = await client.generations.create(prompt="x", idempotency_key="a-1")
        assert same.id == again.id


async def test_async_errors(queued: Account) -> None:
    async with AsyncClient(base_url=queued.server.base_url, api_key="wrong", backoff=FAST) as bad:
        with pytest.raises(AuthenticationError):
            await bad.credits()
    async with queued.async_client() as client:
        with pytest.raises(InvalidInputError) as info:
            await client.generations.create(prompt="")
        assert info.value.field == "prompt"
        with pytest.raises(NotFoundError):
            await client.generations.get("gen_missing")
        with pytest.raises(InvalidInputError):
            async for _ in client.generations.stream(duration=5):
                pass
