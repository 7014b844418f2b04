"""Streaming ``multipart/form-data``: file parts go to disk as they arrive, with a size cap
per field, so an oversize upload is refused after reading at most cap + one chunk."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from reelserve.core.errors import InputTooLarge, InvalidInput

MAX_TEXT_FIELDS = 64
MAX_TEXT_BYTES = 64_000
MAX_NAME_LENGTH = 100
# Every part costs parsing work and a header buffer, whatever its name: cap the parts and
# the header bytes of each, so a body of many tiny or header-heavy parts is refused early.
MAX_PARTS = 80
MAX_HEADER_BYTES = 8_192


@dataclass
class FilePart:
    field: str
    path: Path
    size: int
    sha256: str


@dataclass
class Form:
    text: dict[str, str] = field(default_factory=dict)
    files: dict[str, FilePart] = field(default_factory=dict)

    def cleanup(self) -> None:
        for part in self.files.values():
            part.path.unlink(missing_ok=True)


class _Collector:
    """Receives the parser's callbacks; raises our errors from inside them."""

    def __init__(self, file_caps: Mapping[str, int], tmp_dir: Path) -> None:
        self.file_caps = file_caps
        self.tmp_dir = tmp_dir
        self.form = Form()
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._is_file = False
        self._text = bytearray()
        self._handle: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._hash = hashlib.sha256()
        self._parts = 0
        self._header_bytes = 0

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_header_field": self._header_field_cb,
            "on_header_value": self._header_value_cb,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidInput(
                f"body: at most {MAX_PARTS} multipart parts are accepted", field="body"
            )
        self._headers = {}
        self._header_bytes = 0

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            raise InvalidInput(
                f"body: multipart part headers must be at most {MAX_HEADER_BYTES} bytes",
                field="body",
            )

    def _header_field_cb(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_field += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise InvalidInput("body: every multipart part needs a form-data name", field="body")
        name = options[b"name"].decode("utf-8", "replace")
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidInput(
                f"body: field names must be at most {MAX_NAME_LENGTH} characters", field="body"
            )
        self._name = name
        self._is_file = b"filename" in options
        if self._is_file:
            if name not in self.file_caps:
                allowed = ", ".join(sorted(self.file_caps))
                raise InvalidInput(f"{name}: files are accepted only for {allowed}", field=name)
            if name in self.form.files:
                raise InvalidInput(f"{name}: only one file per field", field=name)
            fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix="upload-")
            self._path = Path(tmp)
            self._handle = open(fd, "wb")  # noqa: SIM115 - closed in _part_end / close()
            self._size = 0
            self._hash = hashlib.sha256()
        else:
            if len(self.form.text) >= MAX_TEXT_FIELDS:
                raise InvalidInput(
                    f"body: at most {MAX_TEXT_FIELDS} text fields are accepted", field="body"
                )
            self._text = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._is_file:
            assert self._handle is not None
            self._size += len(chunk)
            cap = self.file_caps[self._name]
            if self._size > cap:
                raise InputTooLarge(
                    f"{self._name}: file is larger than {cap // 1_000_000} MB", field=self._name
                )
            self._handle.write(chunk)
            self._hash.update(chunk)
        else:
            self._text += chunk
            if len(self._text) > MAX_TEXT_BYTES:
                raise InputTooLarge(
                    f"{self._name}: value is longer than {MAX_TEXT_BYTES} bytes", field=self._name
                )

    def _part_end(self) -> None:
        if self._is_file:
            assert self._handle is not None
            assert self._path is not None
            self._handle.close()
            self._handle = None
            self.form.files[self._name] = FilePart(
                self._name, self._path, self._size, self._hash.hexdigest()
            )
            self._path = None
        else:
            try:
                self.form.text[self._name] = self._text.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{self._name}: must be UTF-8 text", field=self._name) from None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)


async def read_form(
    content_type: str,
    chunks: AsyncIterator[bytes],
    *,
    file_caps: Mapping[str, int],
    tmp_dir: Path,
) -> Form:
    """Parse a multipart body; on any error nothing is left on disk."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("body: multipart/form-data needs a boundary", field="body")
    collector = _Collector(file_caps, tmp_dir)
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        # The parser's own limits (header line size, headers per part) and syntax errors.
        collector.close()
        collector.form.cleanup()
        raise InvalidInput(
            f"body: malformed multipart/form-data ({str(exc).rstrip('.')})", field="body"
        ) from None
    except BaseException:
        collector.close()
        collector.form.cleanup()
        raise
    return collector.form
