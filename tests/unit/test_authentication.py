"""localmesos/authentication.py on its own: what counts as loopback, the realm of a path, and
HTTP Basic as libprocess's BasicAuthenticator checks it."""

from __future__ import annotations

import base64
from email.message import Message

import pytest

from localmesos import authentication
from localmesos.master.http import REALMS as MASTER_REALMS
from localmesos.web import Request, Response


@pytest.mark.parametrize(
    ("ip", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("10.0.0.1", False),
        ("example.org", False),
        ("", False),
    ],
)
def test_is_loopback(ip: str, loopback: bool) -> None:
    assert authentication.is_loopback(ip) is loopback


def test_check_bind_names_the_flag_the_address_and_the_risk() -> None:
    authentication.check_bind("127.0.0.1", None, "--credentials", "--credentials FILE")
    authentication.check_bind("0.0.0.0", {"a": "b"}, "--credentials", "--credentials FILE")
    with pytest.raises(ValueError) as error:
        authentication.check_bind("0.0.0.0", None, "--credentials", "--credentials FILE")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("refusing to bind 0.0.0.0 without --credentials: ")
    assert "could run any command on this machine as user " in message
    assert message.endswith("give --credentials FILE or bind 127.0.0.1")


def test_realms_by_exact_path_and_by_directory() -> None:
    assert authentication.realm_of("/state", MASTER_REALMS) == "mesos-master-readonly"
    assert authentication.realm_of("/", MASTER_REALMS) == "mesos-master-readonly"
    assert authentication.realm_of("/ui/js/app.js", MASTER_REALMS) == "mesos-master-readonly"
    assert authentication.realm_of("/api/v1", MASTER_REALMS) == "mesos-master-readwrite"
    for path in ("/health", "/version", "/redirect", "/link", "/nowhere", "/ui"):
        assert authentication.realm_of(path, MASTER_REALMS) is None, path


def request(authorization: str | None) -> Request:
    headers = Message()
    if authorization is not None:
        headers["Authorization"] = authorization
    return Request("GET", "/state", {}, headers, b"", "127.0.0.1")


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_no_credentials_no_authentication() -> None:
    assert authentication.authenticate(None, "r", request(None)) is None


def test_the_right_pair_names_the_principal() -> None:
    assert authentication.authenticate({"ana": "s3"}, "r", request(basic("ana:s3"))) == "ana"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("ana:wrong"),
        basic("bob:s3"),
        basic("ana:s3:extra"),  # libprocess splits on ':' and wants exactly two parts
        basic("ana"),
        "basic " + basic("ana:s3").split()[1],
        "Basic",
        "Basic !!!",
        "Bearer s3",
    ],
)
def test_anything_else_is_401_with_the_realm(authorization: str | None) -> None:
    reply = authentication.authenticate(
        {"ana": "s3"}, "mesos-agent-readonly", request(authorization)
    )
    assert isinstance(reply, Response)
    assert reply.status == 401
    assert reply.headers == {"WWW-Authenticate": 'Basic realm="mesos-agent-readonly"'}
    assert reply.body == b""


def test_advertised_addresses() -> None:
    assert authentication.advertised_ip("127.0.0.1") == "127.0.0.1"
    assert authentication.advertised_ip("192.0.2.9") == "192.0.2.9"
    assert authentication.advertised_ip("0.0.0.0") != "0.0.0.0"
    assert authentication.advertised_hostname("192.0.2.9") == "192.0.2.9"
