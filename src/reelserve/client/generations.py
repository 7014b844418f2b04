"""``client.generations``: create, read, list, cancel, stream, follow, wait, download.
``Generations`` and ``AsyncGenerations`` are twins: same names, same arguments."""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from reelserve.client._base import (
    DEFAULT_MODEL,
    DEFAULT_POLL_INTERVAL,
    MediaInput,
    PollSchedule,
    RequestSpec,
    create_spec,
    download_target,
    events_spec,
    finished,
    id_path,
    list_params,
)
from reelserve.client._errors import (
    APIConnectionError,
    APIStatusError,
    NotFoundError,
    WaitTimeoutError,
)
from reelserve.client._sse import EventCursor, SSEDecoder
from reelserve.client._transport import AsyncTransport, SyncTransport, parse, parse_as
from reelserve.client.types import Generation, Page, RunningItem, Video

__all__ = ["AsyncGenerations", "Generations"]

Downloadable = Generation | Video | str
# What an expired signed link answers: reelserve says 404, object stores 403 (or 410).
EXPIRED_LINK = frozenset({403, 404, 410})


def _video_of(target: Downloadable) -> tuple[str, str | None]:
    if isinstance(target, str):
        return target, None
    if isinstance(target, Video):
        video = target
    elif target.video is None:
        raise ValueError(f"{target.id} has no video (status {target.status})")
    else:
        video = target.video
    if video.url is None:
        raise ValueError(f"the video file expired at {video.expired_at} and was deleted")
    return video.url, video.file_name


def _part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


class Generations:
    """Generation tasks, synchronously. Reached as ``Client().generations``."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create(
        self,
        model: str = DEFAULT_MODEL,
        *,
        prompt: str | None = None,
        image: MediaInput | None = None,
        end_image: MediaInput | None = None,
        video: MediaInput | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Generation:
        """Create a generation; the record comes back at once (``IN_QUEUE``).

        ``image``, ``end_image`` and ``video`` take a URL (``str``), ``bytes`` or a path;
        bytes and paths are uploaded as multipart file parts. Other body fields
        (``duration=10``, ``aspect_ratio="9:16"``...) go in ``options``. Without an
        ``idempotency_key`` one is generated, so a retried create never creates twice."""
        spec = create_spec(
            self._t.config,
            model,
            sse=False,
            prompt=prompt,
            media={"image": image, "end_image": end_image, "video": video},
            idempotency_key=idempotency_key,
            options=options,
        )
        return parse(Generation, self._t.send(spec))

    def get(self, generation_id: str) -> Generation:
        """The task record (result URLs re-signed)."""
        spec = RequestSpec("GET", self._t.config.url(f"generation/{id_path(generation_id)}"))
        return parse(Generation, self._t.send(spec))

    def running(
        self, limit: int = 50, *, workspace: str | None = None
    ) -> builtins.list[RunningItem]:
        """The caller's tasks that are IN_QUEUE or IN_PROGRESS, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if workspace is not None:
            params["workspace"] = workspace
        spec = RequestSpec("GET", self._t.config.url("generations/running"), params=params)
        return parse_as(builtins.list[RunningItem], self._t.send(spec))

    def list(self, limit: int = 20, cursor: str | None = None, status: str | None = None) -> Page:
        """One page of history, newest first. Pass ``page.next_cursor`` for the next."""
        spec = RequestSpec(
            "GET", self._t.config.url("generations"), params=list_params(limit, cursor, status)
        )
        return parse(Page, self._t.send(spec))

    def iter_all(self, limit: int = 20, status: str | None = None) -> Iterator[Generation]:
        """Every task of the history, newest first, fetching pages of ``limit`` lazily."""
        cursor: str | None = None
        while True:
            page = self.list(limit=limit, cursor=cursor, status=status)
            yield from page.items
            if not page.next_cursor or not page.items:
                return
            cursor = page.next_cursor

    def cancel(self, generation_id: str) -> Generation:
        """Cancel a task. A finished one raises ``ConflictError`` carrying ``.record``."""
        url = self._t.config.url(f"generation/{id_path(generation_id)}/cancel")
        return parse(Generation, self._t.send(RequestSpec("POST", url)))

    def stream(
        self,
        model: str = DEFAULT_MODEL,
        *,
        prompt: str | None = None,
        image: MediaInput | None = None,
        end_image: MediaInput | None = None,
        video: MediaInput | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Iterator[Generation]:
        """Create through the SSE route and yield each new state of the task, IN_QUEUE
        first, the terminal record last. A dropped connection is resumed (``Last-Event-ID``)
        without repeating a record; errors before the stream starts raise on iteration."""
        spec = create_spec(
            self._t.config,
            model,
            sse=True,
            prompt=prompt,
            media={"image": image, "end_image": end_image, "video": video},
            idempotency_key=idempotency_key,
            options=options,
        )
        return self._events(EventCursor(), spec)

    def follow(self, generation_id: str) -> Iterator[Generation]:
        """Yield the states of an existing task from ``GET /generation/{id}/events`` (all
        of them from the first), until the terminal record."""
        id_path(generation_id)
        return self._events(EventCursor(generation_id), None)

    def _events(self, cursor: EventCursor, create: RequestSpec | None) -> Iterator[Generation]:
        config = self._t.config
        drops = 0
        while not cursor.finished:
            if cursor.generation_id is None and create is not None:
                spec = create
            else:
                assert cursor.generation_id is not None
                spec = events_spec(config, cursor.generation_id, cursor.resume_headers())
            try:
                response = self._t.send(spec, stream=True)
            except NotFoundError:
                if create is None or cursor.generation_id is None:
                    raise
                # This server has no resumable event route: poll the record instead.
                yield from self._poll_changes(cursor)
                return
            try:
                decoder = SSEDecoder()
                for line in response.iter_lines():
                    event = decoder.feed(line)
                    record = cursor.accept(event) if event is not None else None
                    if record is not None:
                        drops = 0
                        yield record
                        if record.done:
                            return
            except httpx.TransportError as exc:
                problem: BaseException | None = exc
            else:
                problem = None
            finally:
                response.close()
            if drops >= config.max_retries:
                raise APIConnectionError(
                    f"the event stream of {cursor.generation_id or 'a new task'} kept dropping"
                ) from problem
            self._t.sleep(config.backoff.delay(drops))
            drops += 1

    def _poll_changes(self, cursor: EventCursor) -> Iterator[Generation]:
        assert cursor.generation_id is not None
        schedule = PollSchedule(DEFAULT_POLL_INTERVAL, None)
        while not cursor.finished:
            record = self.get(cursor.generation_id)
            if record != cursor.last:
                cursor.last = record
                yield record
            if not record.done:
                self._t.sleep(schedule.next_delay() or DEFAULT_POLL_INTERVAL)

    def wait(
        self,
        generation_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> Generation:
        """Poll until the task ends; the COMPLETED record. Raises GenerationFailedError,
        GenerationCanceledError, or WaitTimeoutError after ``timeout`` seconds. The
        interval grows by half on each poll up to 8× ``poll_interval``."""
        schedule = PollSchedule(poll_interval, timeout)
        while True:
            record = self.get(generation_id)
            if record.done:
                return finished(record)
            delay = schedule.next_delay()
            if delay is None:
                raise WaitTimeoutError(record, timeout or 0.0)
            self._t.sleep(delay)

    def create_and_wait(
        self,
        model: str = DEFAULT_MODEL,
        *,
        prompt: str | None = None,
        image: MediaInput | None = None,
        end_image: MediaInput | None = None,
        video: MediaInput | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        **options: Any,
    ) -> Generation:
        """``create`` then ``wait``: the COMPLETED record."""
        record = self.create(
            model,
            prompt=prompt,
            image=image,
            end_image=end_image,
            video=video,
            idempotency_key=idempotency_key,
            **options,
        )
        if record.done:
            return finished(record)
        return self.wait(record.id, timeout=timeout, poll_interval=poll_interval)

    def download(self, target: Downloadable, path: str | os.PathLike[str]) -> Path:
        """Stream a result to ``path`` (into it, under the result's file name, when it is
        a directory) and return the file's path. ``target`` is a COMPLETED record, one of
        its videos or a URL. An expired link of a record is refreshed once."""
        url, file_name = _video_of(target)
        destination = download_target(url, path, file_name)
        try:
            response = self._t.send(self._download_spec(url), stream=True)
        except APIStatusError as exc:
            if not (isinstance(target, Generation) and exc.status in EXPIRED_LINK):
                raise
            url, _ = _video_of(self.get(target.id))
            response = self._t.send(self._download_spec(url), stream=True)
        partial = _part_path(destination)
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
            partial.replace(destination)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            response.close()
        return destination

    def _download_spec(self, url: str) -> RequestSpec:
        # Result links are signed: the API key is never sent along (it may be another host).
        return RequestSpec(
            "GET",
            self._t.config.absolute(url),
            headers={"Accept": "*/*"},
            authorized=False,
            follow_redirects=True,
        )


class AsyncGenerations:
    """Generation tasks, asynchronously. Reached as ``AsyncClient().generations``."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def create(
        self,
        model: str = DEFAULT_MODEL,
        *,
        prompt: str | None = None,
        image: MediaInput | None = None,
        end_image: MediaInput | None = None,
        video: MediaInput | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Generation:
        """See ``Generations.create``."""
        spec = create_spec(
            self._t.config,
            model,
            sse=False,
            prompt=prompt,
            media={"image": image, "end_image": end_image, "video": video},
            idempotency_key=idempotency_key,
            options=options,
        )
        return parse(Generation, await self._t.send(spec))

    async def get(self, generation_id: str) -> Generation:
        """See ``Generations.get``."""
        spec = RequestSpec("GET", self._t.config.url(f"generation/{id_path(generation_id)}"))
        return parse(Generation, await self._t.send(spec))

    async def running(
        self, limit: int = 50, *, workspace: str | None = None
    ) -> builtins.list[RunningItem]:
        """See ``Generations.running``."""
        params: dict[str, Any] = {"limit": limit}
        if workspace is not None:
            params["workspace"] = workspace
        spec = RequestSpec("GET", self._t.config.url("generations/running"), params=params)
        return parse_as(builtins.list[RunningItem], await self._t.send(spec))

    async def list(
        self, limit: int = 20, cursor: str | None = None, status: str | None = None
    ) -> Page:
        """See ``Generations.list``."""
        spec = RequestSpec(
            "GET", self._t.config.url("generations"), params=list_params(limit, cursor, status)
        )
        return parse(Page, await self._t.send(spec))

    async def iter_all(
        self, limit: int = 20, status: str | None = None
    ) -> AsyncIterator[Generation]:
        """See ``Generations.iter_all``."""
        cursor: str | None = None
        while True:
            page = await self.list(limit=limit, cursor=cursor, status=status)
            for item in page.items:
                yield item
            if not page.next_cursor or not page.items:
                return
            cursor = page.next_cursor

    async def cancel(self, generation_id: str) -> Generation:
        """See ``Generations.cancel``."""
        url = self._t.config.url(f"generation/{id_path(generation_id)}/cancel")
        return parse(Generation, await self._t.send(RequestSpec("POST", url)))

    def stream(
        self,
        model: str = DEFAULT_MODEL,
        *,
        prompt: str | None = None,
        image: MediaInput | None = None,
        end_image: MediaInput | None = None,
        video: MediaInput | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> AsyncIterator[Generation]:
        """See ``Generations.stream``; use with ``async for``."""
        spec = create_spec(
            self._t.config,
            model,
            sse=True,
            prompt=prompt,
            media={"image": image, "end_image": end_image, "video": video},
            idempotency_key=idempotency_key,
            options=options,
        )
        return self._events(EventCursor(), spec)

    def follow(self, generation_id: str) -> AsyncIterator[Generation]:
        """See ``Generations.follow``; use with ``async for``."""
        id_path(generation_id)
        return self._events(EventCursor(generation_id), None)

    async def _events(
        self, cursor: EventCursor, create: RequestSpec | None
    ) -> AsyncIterator[Generation]:
        config = self._t.config
        drops = 0
        while not cursor.finished:
            if cursor.generation_id is None and create is not None:
                spec = create
            else:
                assert cursor.generation_id is not None
                spec = events_spec(config, cursor.generation_id, cursor.resume_headers())
            try:
                response = await self._t.send(spec, stream=True)
            except NotFoundError:
                if create is None or cursor.generation_id is None:
                    raise
                async for polled in self._poll_changes(cursor):
                    yield polled
                return
            try:
                decoder = SSEDecoder()
                async for line in response.aiter_lines():
                    event = decoder.feed(line)
                    record = cursor.accept(event) if event is not None else None
                    if record is not None:
                        drops = 0
                        yield record
                        if record.done:
                            return
            except httpx.TransportError as exc:
                problem: BaseException | None = exc
            else:
                problem = None
            finally:
                await response.aclose()
            if drops >= config.max_retries:
                raise APIConnectionError(
                    f"the event stream of {cursor.generation_id or 'a new task'} kept dropping"
                ) from problem
            await self._t.sleep(config.backoff.delay(drops))
            drops += 1

    async def _poll_changes(self, cursor: EventCursor) -> AsyncIterator[Generation]:
        assert cursor.generation_id is not None
        schedule = PollSchedule(DEFAULT_POLL_INTERVAL, None)
        while not cursor.finished:
            record = await self.get(cursor.generation_id)
            if record != cursor.last:
                cursor.last = record
                yield record
            if not record.done:
                await self._t.sleep(schedule.next_delay() or DEFAULT_POLL_INTERVAL)

    async def wait(
        self,
        generation_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline, named as in the sync twin)
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> Generation:
        """See ``Generations.wait``."""
        schedule = PollSchedule(poll_interval, timeout)
        while True:
            record = await self.get(generation_id)
            if record.done:
                return finished(record)
            delay = schedule.next_delay()
            if delay is None:
                raise WaitTimeoutError(record, timeout or 0.0)
            await self._t.sleep(delay)

    async def create_and_wait(
        self,
        model: str = DEFAULT_MODEL,
        *,
        prompt: str | None = None,
        image: MediaInput | None = None,
        end_image: MediaInput | None = None,
        video: MediaInput | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (as in the sync twin)
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        **options: Any,
    ) -> Generation:
        """See ``Generations.create_and_wait``."""
        record = await self.create(
            model,
            prompt=prompt,
            image=image,
            end_image=end_image,
            video=video,
            idempotency_key=idempotency_key,
            **options,
        )
        if record.done:
            return finished(record)
        return await self.wait(record.id, timeout=timeout, poll_interval=poll_interval)

    async def download(self, target: Downloadable, path: str | os.PathLike[str]) -> Path:
        """See ``Generations.download``. The file is written with blocking calls, chunk
        by chunk."""
        url, file_name = _video_of(target)
        destination = download_target(url, path, file_name)
        try:
            response = await self._t.send(self._download_spec(url), stream=True)
        except APIStatusError as exc:
            if not (isinstance(target, Generation) and exc.status in EXPIRED_LINK):
                raise
            url, _ = _video_of(await self.get(target.id))
            response = await self._t.send(self._download_spec(url), stream=True)
        partial = _part_path(destination)
        try:
            with partial.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
            partial.replace(destination)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            await response.aclose()
        return destination

    def _download_spec(self, url: str) -> RequestSpec:
        return RequestSpec(
            "GET",
            self._t.config.absolute(url),
            headers={"Accept": "*/*"},
            authorized=False,
            follow_redirects=True,
        )
