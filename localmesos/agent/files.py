"""The sandbox files over HTTP, as src/files/files.cpp serves them: `/files/read`,
`/files/browse` and `/files/download` on each run's directory, its `latest` link, and the
virtual path `/frameworks/F/executors/E/runs/latest`; and the same reads for the operator API's
LIST_FILES and READ_FILE (src/slave/http.cpp `Http::listFiles`, `Http::readFile`). Plain
functions of the agent, run on its thread.
"""

from __future__ import annotations

import base64
import errno
import mimetypes
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from localmesos.web import Request, Response

if TYPE_CHECKING:
    from localmesos.agent.slave import Agent


# files.cpp caps one read at 16 pages.
READ_CAP = 16 * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 65536


def attached_paths(agent: Agent) -> dict[str, Path]:
    """The sandbox paths the agent serves: each run's real directory, and the virtual path
    `/frameworks/F/executors/E/runs/latest` of each executor's latest run; not those the
    garbage collector removed (`Slave::detachFile`)."""
    attached: dict[str, Path] = {}
    sandboxes = [
        (r.framework_id, r.task_id, r.directory)
        for r in [*agent.completed_runs, *agent.runs.values()]
        if not r.detached
    ]
    for executor in [*agent.completed_executors, *agent.executors.values()]:
        if not executor.detached:
            sandboxes.append((executor.framework_id, executor.id, executor.directory))
    for framework_id, executor_id, directory in sandboxes:
        attached[str(directory)] = directory
        attached[str(directory.parent / "latest")] = directory
        virtual = f"/frameworks/{framework_id}/executors/{executor_id}/runs/latest"
        attached[virtual] = directory
    return attached


def resolve(agent: Agent, path: str) -> Path | Response:
    if not path:
        return Response.text(400, "Expecting 'path=value' in query.\n")
    attached = attached_paths(agent)
    cleaned = "/" + path.strip("/")
    for prefix in sorted(attached, key=len, reverse=True):
        if cleaned == prefix or cleaned.startswith(prefix + "/"):
            root = attached[prefix].resolve()
            joined = root / cleaned[len(prefix) :].lstrip("/")
            try:
                target = joined.resolve()
                if not target.exists():
                    return Response(404)
            except (OSError, RuntimeError, ValueError) as error:
                # A symlink loop (pathlib raises RuntimeError for ELOOP), a NUL byte...
                reason = os.strerror(errno.ELOOP) if isinstance(error, RuntimeError) else error
                return Response.text(
                    400, f"Failed to determine canonical path of '{joined}': {reason}.\n"
                )
            if target != root and root not in target.parents:
                # files.cpp: a real path outside the attached directory is refused.
                # files.cpp quotes the sandbox joined with the rest of the request.
                return Response.text(400, f"'{joined}' is inaccessible.\n")
            return target
    return Response(404)


def read(agent: Agent, request: Request) -> Response:
    # files.cpp checks the path, then the numbers, then resolves the path.
    if not request.arg("path"):
        return Response.text(400, "Expecting 'path=value' in query.\n")
    try:
        offset = _number_arg(request, "offset", -1)
        length = _number_arg(request, "length", -1)
    except ValueError as error:
        return Response.text(400, f"{error}.\n")
    if length < -1:
        return Response.text(400, f"Negative length provided: {length}.\n")
    if offset < -1:
        return Response.text(400, f"Negative offset provided: {offset}.\n")
    target = resolve(agent, request.arg("path") or "")
    if isinstance(target, Response):
        return target
    if target.is_dir():
        return Response.text(400, "Cannot read a directory.\n")
    size = target.stat().st_size
    jsonp = request.arg("jsonp")
    if offset == -1:
        return Response.json({"data": "", "offset": size}, jsonp=jsonp)
    if offset >= size:
        return Response.json({"data": "", "offset": offset}, jsonp=jsonp)  # no seek past the end
    if length == -1:
        length = size - offset
    length = max(0, min(length, READ_CAP))
    with open(target, "rb") as file:
        file.seek(offset)
        data = file.read(length)
    return Response.json({"data": data.decode("utf-8", "replace"), "offset": offset}, jsonp=jsonp)


def browse(agent: Agent, request: Request) -> Response:
    listing = _list(agent, request.arg("path") or "")
    if isinstance(listing, Response):
        return listing
    entries = [
        {
            "path": path,
            "nlink": info.st_nlink,
            "size": info.st_size,
            "mtime": float(int(info.st_mtime)),
            "mode": stat.filemode(info.st_mode),
            "uid": _user(info.st_uid),
            "gid": _group(info.st_gid),
        }
        for path, info in listing
    ]
    return Response.json(entries, jsonp=request.arg("jsonp"))


def _list(agent: Agent, path: str) -> list[tuple[str, os.stat_result]] | Response:
    """What `Files::browse` lists: each entry's path (the one asked for, then its name) and
    its stat, by name; a file lists nothing."""
    target = resolve(agent, path)
    if isinstance(target, Response):
        return target
    if not target.is_dir():
        return []
    listing = []
    for child in sorted(target.iterdir()):
        try:
            listing.append((path.rstrip("/") + "/" + child.name, child.stat()))
        except OSError:
            continue  # a broken symlink
    return listing


def download(agent: Agent, request: Request) -> Response:
    """files.cpp `download`: the file itself, as an attachment named after it, typed by its
    extension when known, else application/octet-stream. No JSONP."""
    target = resolve(agent, request.arg("path") or "")
    if isinstance(target, Response):
        return target
    if target.is_dir():
        return Response.text(400, "Cannot download a directory.\n")
    # libprocess's own table of types (process/mime.hpp) knows the common extensions, as
    # Python's does; `stdout` and `stderr` have none in either.
    kind = mimetypes.guess_type(target.name, strict=False)[0] or "application/octet-stream"
    return Response(
        200,
        target.read_bytes(),
        kind,
        {"Content-Disposition": f"attachment; filename={target.name}"},
    )


def list_files(agent: Agent, path: str) -> dict | Response:
    """LIST_FILES: v1 FileInfos, whose `mode` is the number (`/files/browse` writes a string)
    and `mtime` a TimeInfo; an empty listing is `{}`, the repeated field being left out."""
    listing = _list(agent, path)
    if isinstance(listing, Response):
        return listing
    infos = [
        {
            "path": entry,
            "nlink": info.st_nlink,
            "size": info.st_size,
            "mtime": {"nanoseconds": info.st_mtime_ns},
            "mode": info.st_mode,
            "uid": _user(info.st_uid),
            "gid": _group(info.st_gid),
        }
        for entry, info in listing
    ]
    return {"file_infos": infos} if infos else {}


def read_file(agent: Agent, path: str, offset: int, length: int | None) -> dict | Response:
    """READ_FILE (files.cpp `_read`): the file's whole size, and up to 16 pages from
    ``offset`` in base64, as protobuf writes `bytes`; nothing from past the end."""
    target = resolve(agent, path)
    if isinstance(target, Response):
        return target
    if target.is_dir():
        return Response.text(400, "Cannot read a directory.\n")
    # Both numbers are unsigned in the protobuf: a negative one wraps around to a huge one.
    offset %= 2**64
    if length is not None:
        length %= 2**64
    size = target.stat().st_size
    data = b""
    if offset < size:
        wanted = size - offset if length is None else length
        with open(target, "rb") as file:
            file.seek(offset)
            data = file.read(min(wanted, READ_CAP))
    # Both fields are set, so protobuf writes both, an empty `data` too.
    return {"size": size, "data": base64.b64encode(data).decode()}


def _number_arg(request: Request, name: str, default: int) -> int:
    """files.cpp's `offset` and `length`: absent means ``default``; junk is an error."""
    text = request.arg(name)
    if text is None:
        return default
    try:
        return _off_t(text)
    except ValueError:
        raise ValueError(f"Failed to parse {name}: Failed to convert '{text}' to number") from None


def _off_t(text: str) -> int:
    """numify<off_t>: a number that fits 64 bits, or ValueError."""
    number = int(text)
    if not -(2**63) <= number < 2**63:
        raise ValueError(text)
    return number


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _group(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)
