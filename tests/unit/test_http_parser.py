"""Our h11-based http_parser, through the exact calls pymesos's process.py makes."""

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
