"""``HttpParser``: the parser interface of http-parser 0.9.0, built on h11.

pymesos feeds it raw bytes from a non-blocking socket (``execute``) and then polls it:
``is_headers_complete``, ``get_status_code``, ``get_headers``, ``is_chunked``,
``is_partial_body``, ``recv_body`` and ``is_message_complete``. pymesos's own unit tests parse
the requests it writes with ``HttpParser(0)`` and read ``get_method`` and ``get_url`` too.

``kind`` is upstream's: 0 parses a request, 1 a response, and 2 (the default, which pymesos
uses) tells which from the first bytes, as http_parser.c's ``s_start_req_or_res`` state does.
When ``execute`` returns fewer bytes than it was given, pymesos treats it as a parse error and
reports ``get_errno()``. The upstream pure-Python parser also exposes an ``errno`` attribute,
which sends pymesos down a different branch; this class deliberately has none.

Where it differs from upstream (h11 is stricter, and each parser reads one message):
- header names come lower-cased in a plain dict (upstream kept their case and looked them up
  case-insensitively); repeated headers and trailers are joined with ", " as upstream does;
- the request line's parts (method, URL, version) arrive together with the headers;
- an HTTP/1.1 request without ``Host`` is an error, as RFC 9112 section 3.2 requires;
- bytes after the end of the message are an error, where upstream would start on a second
  message of a kept-alive connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

import h11

# pymesos only needs "zero means fine"; these two codes make a failure recognisable in its log.
OK = 0
PARSE_ERROR = 1

# http-parser's HTTP_REQUEST, HTTP_RESPONSE and HTTP_BOTH.
REQUEST = 0
RESPONSE = 1
BOTH = 2

# http_parser.c's HTTP_MAX_HEADER_SIZE: h11's default (16 KiB) would refuse heads upstream read.
MAX_HEADER_SIZE = 80 * 1024

# Empty lines before a message are skipped (http_parser.c's start states; RFC 9112 section 2.2).
EMPTY_LINE_BYTES = b"\r\n"


class HttpParser:
    """Parse one HTTP/1.x message incrementally: a request, a response, or whichever comes."""

    def __init__(self, kind: int = BOTH) -> None:
        if kind not in (REQUEST, RESPONSE, BOTH):
            raise ValueError(
                f"HttpParser kind must be 0 (request), 1 (response) or 2 (either), not {kind!r}"
            )
        self._kind = kind
        self._conn: h11.Connection | None = None
        # What came before the connection exists: kind 2 may need a second byte to choose.
        self._start = b""
        self._method: str | None = None
        self._url: str | None = None
        self._version: tuple[int, int] | None = None
        self._status_code: int | None = None
        self._headers: dict[str, str] = {}
        self._headers_complete = False
        self._body = bytearray()
        self._complete = False
        self._errno = OK
        self._errstr = ""

    def execute(self, data: bytes, length: int) -> int:
        """Consume ``length`` bytes of ``data``; return how many were accepted.

        A ``length`` of 0 tells the parser the peer closed the connection: a response without
        a length then ends, and a message cut short is an error.
        """
        if self._errno != OK:
            return 0
        chunk = bytes(data[:length])
        try:
            if self._conn is None:
                self._start = (self._start + chunk).lstrip(EMPTY_LINE_BYTES)
                if length == 0:
                    # Closed before a message began is fine; inside its first bytes is not.
                    if self._start:
                        return self._fail("the connection closed inside the first line")
                    return 0
                if not self._start or not self._choose_kind(self._start):
                    return length
                chunk, self._start = self._start, b""
            assert self._conn is not None
            if self._complete:
                if chunk.strip(EMPTY_LINE_BYTES):
                    return self._fail("data after the end of the message")
                return length
            self._conn.receive_data(chunk)
            self._drain_events()
            if self._complete and bytes(self._conn.trailing_data[0]).strip(EMPTY_LINE_BYTES):
                return self._fail("data after the end of the message")
        except h11.ProtocolError as exc:
            return self._fail(str(exc))
        return length

    def _choose_kind(self, start: bytes) -> bool:
        """Create the h11 connection once the first bytes say what to parse; False: wait.

        ``start`` is everything received so far, without leading empty lines; the caller
        feeds it to h11 once the connection exists.
        """
        kind = self._kind
        if kind == BOTH:
            # http_parser.c: "H" then "T" begins a response ("HTTP/"), "H" then "E" a HEAD
            # request, any other first byte a request.
            if start[:1] != b"H":
                kind = REQUEST
            elif len(start) < 2:
                return False
            elif start[1:2] == b"T":
                kind = RESPONSE
            elif start[1:2] == b"E":
                kind = REQUEST
            else:
                raise h11.RemoteProtocolError("neither a request nor a response: expected HTTP/")
        if kind == REQUEST:
            self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_SIZE)
        else:
            self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_SIZE)
            # h11 checks that a response answers a request. pymesos writes its request on the
            # socket itself, so tell h11 one was sent; the method only matters for HEAD.
            self._conn.send(h11.Request(method="POST", target="/", headers=[("Host", "mesos")]))
            self._conn.send(h11.EndOfMessage())
        return True

    def _fail(self, why: str) -> int:
        self._errno = PARSE_ERROR
        self._errstr = why
        return 0

    def _drain_events(self) -> None:
        assert self._conn is not None
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._method = event.method.decode("ascii")
                self._url = event.target.decode("latin-1")
                self._head(event.http_version, event.headers)
            elif isinstance(event, h11.Response):
                self._status_code = event.status_code
                self._head(event.http_version, event.headers)
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                # http_parser.c reads trailers with its header callbacks, so they join the headers.
                self._add_headers(event.headers)
                self._complete = True
                return
            elif isinstance(event, h11.ConnectionClosed):
                self._complete = True
                return
            # InformationalResponse (1xx) carries nothing pymesos reads.

    def _head(self, version: bytes, headers: Iterable[tuple[bytes, bytes]]) -> None:
        major, _, minor = version.decode("ascii").partition(".")
        self._version = (int(major), int(minor or 0))
        self._add_headers(headers)
        self._headers_complete = True

    def _add_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        for raw_name, raw_value in headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            if name in self._headers:
                value = f"{self._headers[name]}, {value}"
            self._headers[name] = value

    def get_errno(self) -> int:
        return self._errno

    def get_errstr(self) -> str:
        return self._errstr

    def is_headers_complete(self) -> bool:
        return self._headers_complete

    def get_version(self) -> tuple[int, int] | None:
        """``(major, minor)``, e.g. ``(1, 1)``; None until the headers are complete."""
        return self._version

    def get_status_code(self) -> int | None:
        """A response's status code; None for a request, or until the headers are complete."""
        return self._status_code

    def get_method(self) -> str | None:
        """A request's method, e.g. ``"POST"``; None for a response, or until its headers end."""
        return self._method

    def get_url(self) -> str | None:
        """A request's target as sent, e.g. ``"/api/v1/scheduler?x=1"``; None as get_method."""
        return self._url

    def _split_url(self) -> SplitResult | None:
        return None if self._url is None else urlsplit(self._url)

    def get_path(self) -> str | None:
        """The request target without its query string and fragment."""
        parts = self._split_url()
        return None if parts is None else parts.path

    def get_query_string(self) -> str | None:
        parts = self._split_url()
        return None if parts is None else parts.query

    def get_fragment(self) -> str | None:
        parts = self._split_url()
        return None if parts is None else parts.fragment

    def get_headers(self) -> dict[str, str]:
        """Header names come lower-cased from h11; pymesos upper-cases them anyway."""
        return dict(self._headers)

    def is_chunked(self) -> bool:
        return self._headers.get("transfer-encoding", "").lower() == "chunked"

    def should_keep_alive(self) -> bool:
        """Whether the connection may carry another message, as http_parser.c's
        ``http_should_keep_alive`` decides: HTTP/1.1 unless ``Connection: close``, HTTP/1.0 only
        with ``Connection: keep-alive``, and never after a response that ends at EOF."""
        if self._version is None:
            return False
        tokens = {t.strip().lower() for t in self._headers.get("connection", "").split(",")}
        if self._version >= (1, 1):
            if "close" in tokens:
                return False
        elif "keep-alive" not in tokens:
            return False
        return not self._needs_eof()

    def _needs_eof(self) -> bool:
        """A response with neither a length nor chunks ends when the connection closes."""
        code = self._status_code
        if code is None or code // 100 == 1 or code in (204, 304):
            return False
        return not self.is_chunked() and "content-length" not in self._headers

    def is_partial_body(self) -> bool:
        return bool(self._body)

    def recv_body(self) -> bytes:
        """Return the body bytes received since the last call, and forget them."""
        body = bytes(self._body)
        self._body.clear()
        return body

    def is_message_complete(self) -> bool:
        return self._complete
