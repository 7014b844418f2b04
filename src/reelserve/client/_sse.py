"""Server-Sent Events: a line decoder (the WHATWG rules, comments such as ``: keepalive``
skipped) and the cursor that turns one task's events into records exactly once across
reconnections."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from reelserve.client.types import Generation


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    id: str | None = None
    event: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it lines without their line ending; it returns an event at each blank line
    that closes one with data."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._id: str | None = None
        self._event: str | None = None
        self._retry: int | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "event":
            self._event = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event = None
        if self._data:
            event = ServerSentEvent(
                data="\n".join(self._data), id=self._id, event=self._event, retry=self._retry
            )
        self._data, self._id, self._event, self._retry = [], None, None, None
        return event


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class EventCursor:
    """The position of a client in one task's stream: the task id, the last event id
    (sent back as ``Last-Event-ID`` on reconnection) and the last record handed out."""

    def __init__(self, generation_id: str | None = None) -> None:
        self.generation_id = generation_id
        self.last_event_id: str | None = None
        self.last: Generation | None = None

    @property
    def finished(self) -> bool:
        return self.last is not None and self.last.done

    def resume_headers(self) -> dict[str, str]:
        return {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}

    def accept(self, event: ServerSentEvent) -> Generation | None:
        """The record an event carries, or None for a replay, a duplicate or data that is
        not a task record."""
        seen, new = _as_int(self.last_event_id), _as_int(event.id)
        if seen is not None and new is not None and new <= seen:
            return None
        try:
            record = Generation.model_validate_json(event.data)
        except ValidationError:
            return None
        if self.generation_id is not None and record.id != self.generation_id:
            return None
        if event.id is not None:
            self.last_event_id = event.id
        elif record == self.last:
            # A server without event ids may repeat the current state on reconnection.
            return None
        self.generation_id = record.id
        self.last = record
        return record
