"""Reading a whole request in the poller, without blocking: its head, then a Content-Length or chunked body."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gunicorn.http.body import CHUNK_EXT_RE, ChunkedReader
from gunicorn.http.errors import (
    LimitRequestHeaders,
    LimitRequestLine,
    NoMoreData,
)
from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE, MAX_HEADERS, MAX_REQUEST_LINE, Request
from gunicorn.http.unreader import IterUnreader

from smotra.gunicorn_worker.errors import _HEX, UNLIMITED_REQUEST_LINE


@dataclass(frozen=True)
class Limits:
    """Sizes past which a request goes to a thread to be refused instead of being read further."""

    line: int  # request line, as gunicorn's parser bounds it
    headers: int  # header section: the parser's max_buffer_headers
    body: Callable[[str], int]  # a path's body limit, past which Django refuses the body (413)

    @classmethod
    def of(cls, cfg, body: Callable[[str], int]) -> Limits:
        """The limits gunicorn's Message and Request compute from ``cfg`` (gunicorn/http/message.py)."""
        line = cfg.limit_request_line
        if line < 0 or line >= MAX_REQUEST_LINE:
            line = MAX_REQUEST_LINE
        line = line or UNLIMITED_REQUEST_LINE
        fields = cfg.limit_request_fields if 0 < cfg.limit_request_fields <= MAX_HEADERS else MAX_HEADERS
        field_size = cfg.limit_request_field_size if cfg.limit_request_field_size > 0 else DEFAULT_MAX_HEADERFIELD_SIZE
        return cls(line, fields * (field_size + 2) + 4, body)


def chunk_size(line: bytes) -> int | None:
    """A chunk size line's size, or None where gunicorn's ChunkedReader refuses the line."""
    size, semicolon, extension = line.partition(b";")
    if semicolon:
        if not CHUNK_EXT_RE.fullmatch(b";" + extension):
            return None
        size = size.rstrip(b" \t")
    return int(size, 16) if _HEX.fullmatch(size) else None


class ChunkedFraming:
    """Follows a chunked body's framing (RFC 9112 section 7.1) through the buffer, without decoding.

    It only tells when the body has ended, or is malformed in a way gunicorn's ChunkedReader finds in
    the same bytes (a thread then refuses it without waiting for more); subtler faults, such as a bad
    trailer, are left to that reader once the body has ended.
    """

    def __init__(self, start: int, line_limit: int, trailer_limit: int):
        self.pos = start  # first byte not followed yet
        self.scanned = 0  # how far the current separator search got, so trickled bytes are not rescanned
        self.state = "size"
        self.left = 0  # data bytes still to come in the current chunk
        self.received = 0  # data bytes so far
        self.line_limit, self.trailer_limit = line_limit, trailer_limit

    def advance(self, buf: bytearray) -> bool:
        """Follow the framing as far as ``buf`` goes; True once the body has ended or is malformed."""
        steps = {"size": self._size_line, "data": self._data, "crlf": self._crlf, "trailers": self._trailers}
        while self.state != "end" and steps[self.state](buf):
            pass
        return self.state == "end"

    def _goto(self, state: str, pos: int) -> bool:
        self.state, self.pos, self.scanned = state, pos, 0
        return True

    def _find(self, buf: bytearray, separator: bytes) -> int:
        found = buf.find(separator, max(self.pos, self.scanned - len(separator) + 1))
        self.scanned = len(buf)
        return found

    def _size_line(self, buf: bytearray) -> bool:
        end = self._find(buf, b"\r\n")
        if end < 0:
            return len(buf) - self.pos > self.line_limit and self._goto("end", self.pos)
        size = chunk_size(bytes(buf[self.pos : end]))
        if size is None:
            return self._goto("end", end)
        self.left = size
        return self._goto("data" if size else "trailers", end + 2)

    def _data(self, buf: bytearray) -> bool:
        taken = min(self.left, len(buf) - self.pos)
        self.pos, self.left, self.received = self.pos + taken, self.left - taken, self.received + taken
        return not self.left and self._goto("crlf", self.pos)

    def _crlf(self, buf: bytearray) -> bool:
        if len(buf) - self.pos < 2:  # gunicorn reads two bytes before it judges them
            return False
        return self._goto("size" if buf[self.pos : self.pos + 2] == b"\r\n" else "end", self.pos + 2)

    def _trailers(self, buf: bytearray) -> bool:
        if buf.startswith(b"\r\n", self.pos) or self._find(buf, b"\r\n\r\n") >= 0:
            return self._goto("end", self.pos)
        return len(buf) - self.pos > self.trailer_limit and self._goto("end", self.pos)


class RequestReader:
    """One request's bytes, gathered by the poller until the request is whole or cannot become valid.

    The head is judged by gunicorn's own parser, run over the bytes so far: a thread later parsing
    the same bytes meets the same verdict without reading more. The body is judged by its framing.
    """

    def __init__(self, cfg, limits: Limits, peer, request_number: int, deadline: float):
        self.cfg, self.limits, self.peer, self.request_number = cfg, limits, peer, request_number
        self.deadline = deadline
        self.buf = bytearray()
        self.line_end = -1  # where the first line ends, once it has
        self.body_end = None  # a Content-Length body: where the request ends
        self.body_limit = 0  # its path's (Limits.body), once the head is parsed
        self.chunks = None  # a chunked body: its framing so far
        self.wants_continue = False  # Expect: 100-continue and the body is still to come
        self.continue_sent = False
        self.refusal = None  # a head past gunicorn's limits, for a thread to answer without parsing it

    def feed(self, data: bytes) -> bool:
        """Add received bytes; True when the connection should go to a thread now."""
        start = len(self.buf)
        self.buf += data
        if self.body_end is None and self.chunks is None:
            return self._head(start)
        return self._body_done()

    def _head(self, start: int) -> bool:
        line_ended = self.line_end < 0 and self.buf.find(b"\n", start) >= 0
        if line_ended:  # parsed once, so a bad request line is refused before the headers come
            self.line_end = self.buf.find(b"\n")
        if not line_ended and self.buf.find(b"\r\n\r\n", max(0, start - 3)) < 0:
            return self._head_too_large()
        try:
            parsed = self._parse_head()
        except Exception:  # malformed: a thread's parser raises the same from these bytes and answers it
            return True
        return self._start_body(*parsed) if parsed else self._head_too_large()

    def _parse_head(self) -> tuple[Request, int] | None:
        """gunicorn's parser over the bytes so far: the request and where its head ends, or None."""
        unreader = IterUnreader([bytes(self.buf)])
        try:
            request = Request(self.cfg, unreader, self.peer, self.request_number)
        except NoMoreData:
            return None
        self.body_limit = self.limits.body(request.path)
        return request, len(self.buf) - len(unreader.take_buffered())

    def _head_too_large(self) -> bool:
        # Past these sizes gunicorn's parser would still read once more before refusing; with a client
        # that sends nothing more that read would block a thread, so the refusal is decided here.
        if self.line_end < 0 and len(self.buf) > self.limits.line + 2:
            self.refusal = LimitRequestLine(len(self.buf), self.limits.line)
        elif self.line_end >= 0 and len(self.buf) - self.line_end > self.limits.headers:
            self.refusal = LimitRequestHeaders("max buffer headers")
        return self.refusal is not None

    def _start_body(self, request: Request, head_end: int) -> bool:
        reader = request.body.reader
        if isinstance(reader, ChunkedReader):
            self.chunks = ChunkedFraming(head_end, reader.limit_chunk_size_line, reader.limit_trailer_section)
        elif reader.length > self.body_limit:
            return True  # refused from its Content-Length alone (BodySizeLimitMiddleware), never read
        else:
            self.body_end = head_end + reader.length
        done = self._body_done()
        self.wants_continue = request._expected_100_continue and not done
        return done

    def _body_done(self) -> bool:
        if self.chunks is None:
            return len(self.buf) >= self.body_end
        # Past the limit the body is refused (413) from its first limit + 1 bytes.
        return self.chunks.advance(self.buf) or self.chunks.received > self.body_limit
