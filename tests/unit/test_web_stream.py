"""localmesos.web.EventStream when its source breaks off before the stream is served."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from localmesos.web import EventStream


def test_a_stream_aborted_while_it_starts_still_sends_its_head() -> None:
    """A proxy's pump may abort the stream (its source broke off) while the server is just
    starting to serve it. The client must get the head and then a body cut short, not a
    connection closed before any status line: the abort lands here between the moment the
    server takes the socket and the moment it writes the head."""
    server_side, client_side = socket.socketpair()
    stream = EventStream(content_type="application/octet-stream")
    stream.send_bytes(b"partial")

    class Socket:
        """The server's socket, with abort() run from inside the server's first call on it."""

        def settimeout(self, timeout: float) -> None:
            stream.abort()
            server_side.settimeout(timeout)

        def __getattr__(self, name: str) -> object:
            return getattr(server_side, name)

    class Writer:
        def write(self, data: bytes) -> None:
            server_side.sendall(data)

    handler = SimpleNamespace(
        connection=Socket(),
        wfile=Writer(),
        request_version="HTTP/1.1",
        client_address=("127.0.0.1", 1),
        close_connection=False,
        server=SimpleNamespace(name="test"),
    )
    try:
        stream.serve(handler)  # type: ignore[arg-type]
        server_side.shutdown(socket.SHUT_WR)
        client_side.settimeout(10)
        received = b""
        while data := client_side.recv(65536):
            received += data
    finally:
        server_side.close()
        client_side.close()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received[:80]
    # Cut short: no last chunk, so the client cannot take it for a whole answer.
    assert not received.endswith(b"0\r\n\r\n"), received[-40:]
