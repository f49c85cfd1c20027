"""``HttpParser``: the response-parser interface of http-parser 0.9.0, built on h11.

pymesos feeds it raw bytes from a non-blocking socket (``execute``) and then polls it:
``is_headers_complete``, ``get_status_code``, ``get_headers``, ``is_chunked``,
``is_partial_body``, ``recv_body`` and ``is_message_complete``. When ``execute`` returns
fewer bytes than it was given, pymesos treats it as a parse error and reports
``get_errno()``. The upstream pure-Python parser also exposes an ``errno`` attribute,
which sends pymesos down a different branch; this class deliberately has none.
"""

from __future__ import annotations

import h11

# pymesos only needs "zero means fine"; these two codes make a failure recognisable in its log.
OK = 0
PARSE_ERROR = 1


class HttpParser:
    """Parse one HTTP/1.1 response, incrementally, the way pymesos reads a Mesos stream."""

    def __init__(self) -> None:
        self._conn = h11.Connection(our_role=h11.CLIENT)
        # h11 checks that a response answers a request. pymesos writes its request on the
        # socket itself, so tell h11 one was sent; the method only matters for HEAD.
        self._conn.send(h11.Request(method="POST", target="/", headers=[("Host", "mesos")]))
        self._conn.send(h11.EndOfMessage())
        self._status_code: int | None = None
        self._headers: dict[str, str] = {}
        self._chunked = False
        self._body = bytearray()
        self._complete = False
        self._errno = OK
        self._errstr = ""

    def execute(self, data: bytes, length: int) -> int:
        """Consume ``length`` bytes of ``data``; return how many were accepted."""
        if self._errno != OK:
            return 0
        try:
            self._conn.receive_data(bytes(data[:length]))
            self._drain_events()
        except h11.ProtocolError as exc:
            self._errno = PARSE_ERROR
            self._errstr = str(exc)
            return 0
        return length

    def _drain_events(self) -> None:
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self._status_code = event.status_code
                self._headers = {
                    name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers
                }
                encoding = self._headers.get("transfer-encoding", "")
                self._chunked = "chunked" in encoding.lower()
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._complete = True
                return
            # InformationalResponse (1xx) carries nothing pymesos reads.

    def get_errno(self) -> int:
        return self._errno

    def get_errstr(self) -> str:
        return self._errstr

    def is_headers_complete(self) -> bool:
        return self._status_code is not None

    def get_status_code(self) -> int | None:
        return self._status_code

    def get_headers(self) -> dict[str, str]:
        """Header names come lower-cased from h11; pymesos upper-cases them anyway."""
        return dict(self._headers)

    def is_chunked(self) -> bool:
        return self._chunked

    def is_partial_body(self) -> bool:
        return bool(self._body)

    def recv_body(self) -> bytes:
        """Return the body bytes received since the last call, and forget them."""
        body = bytes(self._body)
        self._body.clear()
        return body

    def is_message_complete(self) -> bool:
        return self._complete
