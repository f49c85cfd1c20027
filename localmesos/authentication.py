"""HTTP authentication for the master's and the agents' endpoints, and the rule that keeps a
cluster reachable from other machines from running anyone's commands.

Mesos puts each endpoint in a realm when it routes it (`route(path, realm, ...)` in
src/master/master.cpp `Master::initialize` and src/slave/slave.cpp `Slave::initialize`), and
libprocess asks that realm's authenticator before the handler runs, so a request with no or
wrong credentials gets 401 whatever else is wrong with it (3rdparty/libprocess/src/process.cpp,
`ProcessManager::handle`). With HTTP Basic (3rdparty/libprocess/src/authenticator.cpp,
`BasicAuthenticatorProcess::authenticate`) the 401 carries `WWW-Authenticate: Basic
realm="<realm>"`. Endpoints routed with no realm (/health, /version, /redirect) stay open. The
realm names are Mesos's (src/master/constants.hpp, src/slave/constants.hpp).
"""

from __future__ import annotations

import base64
import binascii
import getpass
import ipaddress
import socket
from collections.abc import Mapping

from localmesos import protocol
from localmesos.web import Request, Response

MASTER_READONLY = "mesos-master-readonly"
MASTER_READWRITE = "mesos-master-readwrite"
MASTER_SCHEDULER = "mesos-master-scheduler"  # DEFAULT_HTTP_FRAMEWORK_AUTHENTICATION_REALM
AGENT_READONLY = "mesos-agent-readonly"
AGENT_READWRITE = "mesos-agent-readwrite"

# How long an offer may go unanswered in a room (a cluster bound to an address other machines
# reach) when --offer-timeout is not given. Mesos keeps offers for ever by default; in a room
# of thirty schedulers one that stops (a breakpoint, a closed laptop) would otherwise hold the
# agents it was offered until it disconnects. Thirty seconds is long for a scheduler that
# works (ours answer an offer in milliseconds, and one that declines sets a 30 s filter of its
# own), and short enough that a stalled one costs the room half a minute.
ROOM_OFFER_TIMEOUT = 30.0


def authenticate(
    credentials: Mapping[str, str] | None, realm: str, request: Request
) -> str | Response | None:
    """The authenticated principal, None when authentication is off, or the 401 to answer.

    As `BasicAuthenticatorProcess::authenticate`: the scheme must be `Basic`, the decoded
    value exactly one `principal:secret` pair (a secret with a colon never matches there)."""
    if credentials is None:
        return None
    refused = Response.text(401, "", **{"WWW-Authenticate": f'Basic realm="{realm}"'})
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Basic":
        return refused
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, ValueError):
        return refused
    parts = decoded.split(":")
    if len(parts) != 2 or parts[0] not in credentials or credentials[parts[0]] != parts[1]:
        return refused
    return parts[0]


def realm_of(path: str, realms: Mapping[str, str]) -> str | None:
    """The realm of ``path`` in a routing table: an exact entry, or for an entry that ends in
    "/" (a directory of static files, as libprocess's `provide`) any path under it."""
    realm = realms.get(path)
    if realm is not None:
        return realm
    for prefix, realm in realms.items():
        if prefix.endswith("/") and prefix != "/" and path.startswith(prefix):
            return realm
    return None


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost": reachable from this machine only."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def check_bind(ip: str, credentials: Mapping[str, str] | None, flag: str, example: str) -> None:
    """Refuse to serve on an address that other machines reach without credentials: every
    agent runs whatever command a framework launches, as this user. ``flag`` names the
    option that gives them, ``example`` shows it given."""
    if credentials is None and not is_loopback(ip):
        raise ValueError(
            f"refusing to bind {ip} without {flag}: anyone who reaches it could run any "
            f"command on this machine as user {getpass.getuser()}; give {example} or bind "
            "127.0.0.1"
        )


def advertised_ip(ip: str) -> str:
    """The address to tell others for a server bound to ``ip``. For the wildcard 0.0.0.0
    libprocess advertises one real address of the machine (process.cpp `initialize`: the
    first address of its hostname); where the hostname resolves to a loopback address (many
    Debian and Ubuntu machines) that one is useless to others, so the address of the route
    out is taken instead (a UDP socket's connect sends nothing)."""
    if ip != "0.0.0.0":
        return ip
    try:
        named = socket.gethostbyname(socket.gethostname())
        if not is_loopback(named):
            return named
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737): routed, never answered
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def advertised_hostname(ip: str) -> str:
    """The hostname to tell others for the advertised ``ip``. On loopback, its reverse lookup,
    as Mesos does ("localhost"); beyond it, the address itself, as Mesos with
    `--hostname_lookup=false` (slave/flags.cpp, master/flags.cpp): the machines of a room
    reach the address, but cannot be counted on to resolve this machine's name, and the
    frameworks read sandboxes at the hostname that offers carry."""
    return protocol.hostname_for(ip) if is_loopback(ip) else ip
