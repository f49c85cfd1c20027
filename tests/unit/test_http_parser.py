"""Our h11-based http_parser: responses through the exact calls pymesos's process.py makes, and
requests the way pymesos's own unit tests read what its drivers write (HttpParser(0))."""

from __future__ import annotations

from http_parser.http import HttpParser

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Mesos-Stream-Id: 8d7b5e4c-stream\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
    b'5\r\n12\n{"\r\n'
    b'b\r\na":1,"b":2}\r\n'
    b"0\r\n\r\n"
)


def feed(parser: HttpParser, data: bytes, size: int) -> bytes:
    body = b""
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        assert parser.execute(piece, len(piece)) == len(piece)
        if parser.is_partial_body():
            body += parser.recv_body()
    return body


def test_headers_become_available_before_the_body() -> None:
    parser = HttpParser()
    head = RESPONSE[: RESPONSE.index(b"\r\n\r\n") + 4]
    assert not parser.is_headers_complete()
    parser.execute(head, len(head))
    assert parser.is_headers_complete()
    assert parser.get_status_code() == 200
    assert parser.is_chunked()
    headers = {k.upper(): v for k, v in parser.get_headers().items()}
    assert headers["MESOS-STREAM-ID"] == "8d7b5e4c-stream"
    assert not parser.is_partial_body()
    assert not parser.is_message_complete()


def test_chunked_body_survives_any_split() -> None:
    for size in range(1, len(RESPONSE) + 1):
        parser = HttpParser()
        assert feed(parser, RESPONSE, size) == b'12\n{"a":1,"b":2}', f"read size {size}"
        assert parser.is_message_complete()


def test_recv_body_hands_each_byte_over_once() -> None:
    parser = HttpParser()
    parser.execute(RESPONSE, len(RESPONSE))
    assert parser.recv_body() == b'12\n{"a":1,"b":2}'
    assert parser.recv_body() == b""
    assert not parser.is_partial_body()


def test_a_response_that_is_not_chunked_says_so() -> None:
    parser = HttpParser()
    data = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\nno way!"
    parser.execute(data, len(data))
    assert parser.get_status_code() == 400
    assert not parser.is_chunked()
    assert parser.recv_body() == b"no way!"
    assert parser.is_message_complete()


def test_garbage_is_reported_the_way_pymesos_expects() -> None:
    parser = HttpParser()
    data = b"this is not HTTP\r\n\r\n"
    # pymesos sees fewer bytes parsed than received, then reads get_errno() for its message.
    assert parser.execute(data, len(data)) < len(data)
    assert parser.get_errno() != 0
    assert parser.get_errstr()
    # With an `errno` attribute pymesos would take the upstream pure-Python parser's branch.
    assert not hasattr(parser, "errno")


def test_a_bad_chunk_size_is_an_error() -> None:
    parser = HttpParser()
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    assert parser.execute(data, len(data)) < len(data)
    assert parser.get_errno() != 0


# Requests: pymesos's own unit tests parse what its drivers write with HttpParser(0).

REQUEST = (
    b"POST /api/v1/scheduler?role=web#top HTTP/1.1\r\n"
    b"Host: 127.0.0.1:5050\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 18\r\n\r\n"
    b'{"type":"SUBSCRIBE'
)

CHUNKED_REQUEST = (
    b"POST /api/v1/executor HTTP/1.1\r\n"
    b"Host: agent\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
    b"4\r\nab\r\n\r\n"
    b"3;ext=1\r\ncde\r\n"
    b"0\r\n"
    b"Checksum: 7\r\n\r\n"
)


def parse(data: bytes, kind: int = 0, size: int | None = None) -> tuple[HttpParser, bytes]:
    parser = HttpParser(kind)
    return parser, feed(parser, data, size or len(data))


def test_a_request_gives_its_line_headers_and_body() -> None:
    parser, body = parse(REQUEST)
    assert parser.is_headers_complete()
    assert parser.get_method() == "POST"
    assert parser.get_url() == "/api/v1/scheduler?role=web#top"
    assert parser.get_path() == "/api/v1/scheduler"
    assert parser.get_query_string() == "role=web"
    assert parser.get_fragment() == "top"
    assert parser.get_version() == (1, 1)
    assert parser.get_status_code() is None
    assert parser.get_headers() == {
        "host": "127.0.0.1:5050",
        "content-type": "application/json",
        "content-length": "18",
    }
    assert not parser.is_chunked()
    assert body == b'{"type":"SUBSCRIBE'
    assert parser.is_message_complete()


def test_a_request_waits_for_the_rest_of_its_body() -> None:
    parser = HttpParser(0)
    head_and_some = REQUEST[:-5]
    assert parser.execute(head_and_some, len(head_and_some)) == len(head_and_some)
    assert parser.get_method() == "POST"
    assert parser.is_partial_body()
    assert not parser.is_message_complete()
    assert parser.execute(REQUEST[-5:], 5) == 5
    assert parser.is_message_complete()


def test_a_request_survives_any_split() -> None:
    for request, expected in ((REQUEST, b'{"type":"SUBSCRIBE'), (CHUNKED_REQUEST, b"ab\r\ncde")):
        for size in range(1, len(request) + 1):
            parser, body = parse(request, size=size)
            assert body == expected, f"read size {size}"
            assert parser.get_method() == "POST", f"read size {size}"
            assert parser.is_message_complete(), f"read size {size}"


def test_a_chunked_request_body_and_its_trailer() -> None:
    parser, body = parse(CHUNKED_REQUEST)
    assert parser.is_chunked()
    assert body == b"ab\r\ncde"
    # http_parser.c reads trailers with its header callbacks: they join the headers.
    assert parser.get_headers()["checksum"] == "7"
    assert parser.is_message_complete()


def test_a_request_without_a_body_is_complete_at_its_empty_line() -> None:
    parser, body = parse(b"GET /state HTTP/1.1\r\nHost: master\r\n\r\n")
    assert (parser.get_method(), parser.get_path(), parser.get_query_string()) == (
        "GET",
        "/state",
        "",
    )
    assert body == b""
    assert not parser.is_partial_body()
    assert parser.is_message_complete()


def test_repeated_headers_are_joined_as_upstream_does() -> None:
    parser, _ = parse(b"GET / HTTP/1.1\r\nHost: m\r\nAccept: a/b\r\nAccept: c/d\r\n\r\n")
    assert parser.get_headers()["accept"] == "a/b, c/d"


def test_empty_lines_before_a_request_are_skipped() -> None:
    data = b"\r\n\r\nGET / HTTP/1.1\r\nHost: m\r\n\r\n"
    for size in (1, 2, 3, len(data)):
        parser, _ = parse(data, size=size)
        assert parser.get_method() == "GET", f"read size {size}"
        assert parser.is_message_complete()


def test_keep_alive_follows_the_version_and_connection_header() -> None:
    cases = {
        b"GET / HTTP/1.1\r\nHost: m\r\n\r\n": True,
        b"GET / HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n": False,
        b"GET / HTTP/1.1\r\nHost: m\r\nConnection: Upgrade, Close\r\n\r\n": False,
        b"GET / HTTP/1.0\r\n\r\n": False,
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n": True,
    }
    for request, keep_alive in cases.items():
        parser, _ = parse(request)
        assert parser.should_keep_alive() is keep_alive, request
    assert not HttpParser(0).should_keep_alive()


def test_a_response_that_ends_at_eof_cannot_keep_the_connection() -> None:
    parser, body = parse(b"HTTP/1.1 200 OK\r\n\r\nsome", kind=1)
    assert body == b"some"
    assert not parser.should_keep_alive()
    assert not parser.is_message_complete()
    # A length of 0 tells the parser the peer closed: that ends this body.
    assert parser.execute(b"", 0) == 0
    assert parser.get_errno() == 0
    assert parser.is_message_complete()
    chunked, _ = parse(RESPONSE, kind=1)
    assert chunked.should_keep_alive()


def test_the_default_kind_tells_requests_from_responses() -> None:
    # "HT" starts a response, "HE" a HEAD request, anything else a request (http_parser.c).
    for data, method, status in (
        (RESPONSE, None, 200),
        (b"HEAD / HTTP/1.1\r\nHost: m\r\n\r\n", "HEAD", None),
        (b"GET / HTTP/1.1\r\nHost: m\r\n\r\n", "GET", None),
    ):
        for size in (1, 2, len(data)):
            parser, _ = parse(data, kind=2, size=size)
            assert (parser.get_method(), parser.get_status_code()) == (method, status), size
            assert parser.is_message_complete()


def test_a_request_given_to_a_response_parser_is_an_error() -> None:
    parser = HttpParser(1)
    assert parser.execute(REQUEST, len(REQUEST)) < len(REQUEST)
    assert parser.get_errno() != 0


def test_a_response_given_to_a_request_parser_is_an_error() -> None:
    parser = HttpParser(0)
    assert parser.execute(RESPONSE, len(RESPONSE)) < len(RESPONSE)
    assert parser.get_errno() != 0


def bad(data: bytes, kind: int = 0) -> HttpParser:
    """Feed ``data``, which must be refused the way the upstream C parser refuses input."""
    parser = HttpParser(kind)
    assert parser.execute(data, len(data)) < len(data), data
    assert parser.get_errno() != 0, data
    assert parser.get_errstr(), data
    # Once failed, the parser takes nothing more, as http_parser_execute does after an error.
    assert parser.execute(b"GET", 3) == 0
    return parser


def test_malformed_requests_are_refused() -> None:
    bad(b"POST\r\n\r\n")
    bad(b"POST / HTTP/9\r\nHost: m\r\n\r\n")
    bad(b"POST / HTTP/1.1\r\nHost: m\r\nNo colon here\r\n\r\n")
    bad(b"POST / HTTP/1.1\r\nHost: m\r\nContent-Length: many\r\n\r\n")
    bad(b"POST / HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    bad(b"HX / HTTP/1.1\r\n\r\n", kind=2)


def test_an_http_11_request_must_name_its_host() -> None:
    parser = bad(b"GET / HTTP/1.1\r\n\r\n")
    assert "Host" in parser.get_errstr()


def test_a_request_cut_short_by_the_peer_is_an_error() -> None:
    parser = HttpParser(0)
    assert parser.execute(REQUEST[:-3], len(REQUEST) - 3) == len(REQUEST) - 3
    parser.execute(b"", 0)
    assert parser.get_errno() != 0
    assert not parser.is_message_complete()
    for start in (b"", b"\r\n"):
        quiet = HttpParser()
        quiet.execute(start, len(start))
        quiet.execute(b"", 0)
        assert quiet.get_errno() == 0, "a connection closed before any message is no error"
    half = HttpParser()
    half.execute(b"H", 1)
    half.execute(b"", 0)
    assert half.get_errno() != 0


def test_bytes_after_the_message_are_refused() -> None:
    data = REQUEST + b"GET / HTTP/1.1\r\n"
    parser = bad(data)
    assert parser.get_errstr() == "data after the end of the message"
    # Empty lines after a message are allowed, as before one.
    ok = HttpParser(0)
    ok.execute(REQUEST, len(REQUEST))
    assert ok.execute(b"\r\n", 2) == 2
    assert ok.get_errno() == 0


def test_heads_up_to_http_parsers_limit_are_read() -> None:
    # http_parser.c takes 80 KiB of head; h11 alone would stop at 16 KiB of an incomplete one.
    cookie = b"x" * (60 * 1024)
    head = b"GET / HTTP/1.1\r\nHost: m\r\nCookie: " + cookie + b"\r\n\r\n"
    parser, _ = parse(head, size=4096)
    assert parser.get_headers()["cookie"] == cookie.decode()
    parser = HttpParser(0)
    too_big = b"GET / HTTP/1.1\r\nHost: m\r\nCookie: " + cookie * 2
    accepted = [parser.execute(too_big[i : i + 4096], 4096) for i in range(0, len(too_big), 4096)]
    assert 0 in accepted
    assert parser.get_errno() != 0


def test_an_unknown_kind_is_refused_by_name() -> None:
    for kind in (3, -1, "request"):
        try:
            HttpParser(kind)  # type: ignore[arg-type]
        except ValueError as exc:
            assert repr(kind) in str(exc)
        else:
            raise AssertionError(f"HttpParser({kind!r}) was accepted")
