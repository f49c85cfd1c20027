"""The fetcher: each kind of URI, each archive format, executable, output_file, the cache, and
the failures, with the log lines mesos-fetcher writes to the sandbox's stderr and the message
the launch fails with (src/launcher/fetcher.cpp, src/slave/containerizer/fetcher.cpp)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import socket
import stat
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from localmesos import fetcher as fetcher_module
from localmesos.fetcher import Fetcher, FetchError

GLOG = re.compile(
    r"^([IWE])(\d{4} \d\d:\d\d:\d\d\.\d{6}) ([ \d]{5}|\d{6,}) (fetcher\.cpp:\d+)\] (.*)$"
)
NOT_AN_ARCHIVE = (
    "Copying instead of extracting resource from URI with 'extract' flag, because it does not "
    "seem to be an archive: "
)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours the *_proxy variables as curl does; the tests talk to loopback directly.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    path = tmp_path / "sandbox"
    path.mkdir()
    return path


@pytest.fixture
def fetcher(tmp_path: Path) -> Fetcher:
    return Fetcher(tmp_path / "cache")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source"
    path.mkdir()
    return path


def write(path: Path, data: bytes | str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def log_lines(sandbox: Path) -> list[tuple[str, str, str]]:
    """(severity, "fetcher.cpp:N", message) for each glog line; ("", "", text) otherwise."""
    lines = []
    for text in (sandbox / "stderr").read_text().splitlines():
        match = GLOG.match(text)
        if match:
            assert int(match[3]) == threading.get_native_id()  # fetch ran on this thread
            lines.append((match[1], match[4], match[5]))
        else:
            lines.append(("", "", text))
    return lines


def messages(sandbox: Path) -> list[str]:
    """The log's messages, the Fetcher Info line left out."""
    return [m for _, _, m in log_lines(sandbox) if not m.startswith("Fetcher Info: ")]


def fetcher_info(sandbox: Path) -> dict:
    first = log_lines(sandbox)[0]
    assert first[:2] == ("I", "fetcher.cpp:562")
    return json.loads(first[2].removeprefix("Fetcher Info: "))


def actions(sandbox: Path) -> list[str]:
    return [item["action"] for item in fetcher_info(sandbox)["items"]]


def fetch_error(fetcher: Fetcher, uris: list[dict], sandbox: Path, **kwargs: object) -> str:
    with pytest.raises(FetchError) as raised:
        fetcher.fetch("c1", {"uris": uris}, sandbox, **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


FAILED = "Failed to fetch all URIs for container 'c1': exited with status 1"


# -- a local HTTP server on loopback --------------------------------------------------------------


class Server:
    """Routes: path -> (status, body, headers) or a function that answers the request itself."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, dict[str, str]] | Callable] = {}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def do_GET(self) -> None:
                self.answer(body=True)

            def answer(self, body: bool) -> None:
                server.requests.append((self.command, self.path))
                route = server.routes.get(self.path, (404, b"not found\n", {}))
                if callable(route):
                    route(self)
                    return
                status, data, headers = route
                self.send_response(status)
                headers = {"Content-Length": str(len(data))} | headers
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def gets(self, path: str) -> int:
        return self.requests.count(("GET", path))


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


# -- local files -----------------------------------------------------------------------------


def test_a_local_path_is_copied_with_mesos_log_lines(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    path = write(source / "app.txt", "hello")
    fetcher.fetch("c1", {"uris": [{"value": str(path)}]}, sandbox)
    assert (sandbox / "app.txt").read_text() == "hello"
    assert stat.S_IMODE((sandbox / "app.txt").stat().st_mode) & 0o111 == 0
    value = str(path)
    assert log_lines(sandbox)[1:] == [
        ("I", "fetcher.cpp:459", f"Fetching URI '{value}'"),
        ("I", "fetcher.cpp:290", f"Fetching '{value}' directly into the sandbox directory"),
        # "extract" defaults to true, so Mesos warns about every plain file.
        ("W", "fetcher.cpp:332", NOT_AN_ARCHIVE + value),
        ("I", "fetcher.cpp:618", f"Fetched '{value}' to '{sandbox}/app.txt'"),
        ("I", "fetcher.cpp:623", f"Successfully fetched all URIs into '{sandbox}'"),
    ]
    assert fetcher_info(sandbox) == {
        "cache_directory": str(fetcher.cache_dir),
        "items": [{"action": "BYPASS_CACHE", "uri": {"extract": True, "value": value}}],
        "sandbox_directory": str(sandbox),
        "stall_timeout": {"nanoseconds": 60_000_000_000},
    }
    assert (sandbox / "stdout").read_bytes() == b""


def test_the_info_line_is_compact_json_with_sorted_keys(fetcher: Fetcher, sandbox: Path) -> None:
    fetcher.fetch("c1", {"uris": []}, sandbox)  # nothing to log: the files are still created
    assert (sandbox / "stderr").read_bytes() == b""
    path = write(sandbox.parent / "a", "x")
    uri = {"value": str(path), "output_file": "b", "executable": False}
    fetcher.fetch("c1", {"uris": [uri], "user": "alice"}, sandbox)
    line = (sandbox / "stderr").read_text().splitlines()[0]
    expected = (
        f'] Fetcher Info: {{"cache_directory":"{fetcher.cache_dir}/alice","items":[{{"action":'
        '"BYPASS_CACHE","uri":{"executable":false,"extract":true,"output_file":"b","value":'
        f'"{path}"}}}}],"sandbox_directory":"{sandbox}","stall_timeout":{{"nanoseconds":'
        '60000000000},"user":"alice"}'
    )
    assert line.endswith(expected)


def test_fetching_truncates_the_sandbox_stdout_and_stderr(fetcher: Fetcher, sandbox: Path) -> None:
    write(sandbox / "stdout", "old output")
    write(sandbox / "stderr", "old errors")
    fetcher.fetch("c1", {"uris": []}, sandbox)
    assert (sandbox / "stdout").read_bytes() == b""
    assert (sandbox / "stderr").read_bytes() == b""


def test_file_uris_with_and_without_localhost(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    a = write(source / "a.txt", "a")
    b = write(source / "b.txt", "b")
    uris = [{"value": f"file://{a}"}, {"value": f"file://localhost{b}"}]
    fetcher.fetch("c1", {"uris": uris}, sandbox)
    assert (sandbox / "a.txt").read_text() == "a"
    assert (sandbox / "b.txt").read_text() == "b"


def test_leading_whitespace_is_trimmed(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    path = write(source / "a.txt", "a")
    fetcher.fetch("c1", {"uris": [{"value": f"\r\n\t {path}"}]}, sandbox)
    assert (sandbox / "a.txt").read_text() == "a"


def test_a_relative_file_uri_fails(fetcher: Fetcher, sandbox: Path) -> None:
    assert fetch_error(fetcher, [{"value": "file://relative/a.txt"}], sandbox) == FAILED
    assert messages(sandbox)[-1] == (
        "EXIT with status 1: Failed to fetch 'file://relative/a.txt': "
        "File URI only supports absolute paths"
    )


def test_a_relative_path_needs_the_frameworks_home(
    tmp_path: Path, sandbox: Path, source: Path
) -> None:
    write(source / "bin" / "tool", "#!/bin/sh\n", 0o755)
    uris = [{"value": "bin/tool"}]
    assert fetch_error(Fetcher(tmp_path / "c1"), uris, sandbox) == FAILED
    assert log_lines(sandbox)[-1] == (
        "E",
        "fetcher.cpp:615",
        "EXIT with status 1: Failed to fetch 'bin/tool': A relative path was passed for the "
        "resource but the Mesos framework home was not specified. Please either provide this "
        "config option or avoid using a relative path",
    )
    Fetcher(tmp_path / "c2", frameworks_home=str(source)).fetch("c1", {"uris": uris}, sandbox)
    assert (
        "I",
        "fetcher.cpp:215",
        f"Prepended Mesos frameworks home to relative path, making it: '{source}/bin/tool'",
    ) in log_lines(sandbox)
    # cp keeps the source's mode, so an executable stays one without "executable".
    assert stat.S_IMODE((sandbox / "tool").stat().st_mode) & 0o111


def test_a_missing_file_fails_with_cp_in_stderr(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    missing = source / "nope.txt"
    assert fetch_error(fetcher, [{"value": str(missing)}], sandbox) == FAILED
    assert messages(sandbox)[-2:] == [
        f"cp: cannot stat '{missing}': No such file or directory",
        f"EXIT with status 1: Failed to fetch '{missing}': cp failed with status: 256",
    ]
    assert "Successfully fetched" not in (sandbox / "stderr").read_text()


def test_the_fetch_stops_at_the_first_failure(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    good = write(source / "good.txt", "g")
    uris = [{"value": str(source / "nope")}, {"value": str(good)}]
    assert fetch_error(fetcher, uris, sandbox) == FAILED
    assert not (sandbox / "good.txt").exists()


def test_the_same_uri_twice_is_fetched_once(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    path = write(source / "a.txt", "a")
    fetcher.fetch("c1", {"uris": [{"value": str(path)}, {"value": str(path)}]}, sandbox)
    assert messages(sandbox).count(f"Fetching URI '{path}'") == 1


# -- validation, before anything runs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ({"value": "lala://nopath"}, "Malformed URI (missing path): lala://nopath"),
        ({"value": "http://host"}, "Malformed URI (missing path): http://host"),
        ({"value": "/tmp/it's"}, "Illegal characters in URI"),
        ({"value": "C:\\file"}, "Illegal characters in URI"),
        ({"value": "/a", "output_file": ""}, "URI output file path is empty"),
        (
            {"value": "/a", "output_file": "/etc/a"},
            "URI output file must be within the sandbox directory",
        ),
        (
            {"value": "/a", "output_file": "d/../../a"},
            "URI output file must be within the sandbox directory",
        ),
        ({"executable": True}, "a URI needs a string 'value': {'executable': True}"),
    ],
)
def test_bad_uris_fail_before_the_fetcher_runs(
    fetcher: Fetcher, sandbox: Path, uri: dict, message: str
) -> None:
    assert fetch_error(fetcher, [uri], sandbox) == f"Could not fetch: {message}"
    assert not (sandbox / "stderr").exists()  # FetcherProcess::fetch fails before run()


# -- executable and output_file --------------------------------------------------------------


def test_executable_makes_the_file_0755(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    path = write(source / "run.sh", "#!/bin/sh\n", 0o600)
    fetcher.fetch("c1", {"uris": [{"value": str(path), "executable": True}]}, sandbox)
    assert stat.S_IMODE((sandbox / "run.sh").stat().st_mode) == 0o755
    assert not any(m.startswith("Copying instead") for m in messages(sandbox))


def test_executable_wins_over_extract(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    archive = make_tar(source / "app.tar.gz", {"app/a.txt": b"a"})
    fetcher.fetch("c1", {"uris": [{"value": str(archive), "executable": True}]}, sandbox)
    assert stat.S_IMODE((sandbox / "app.tar.gz").stat().st_mode) == 0o755
    assert not (sandbox / "app").exists()


def test_output_file_renames_into_a_subdirectory(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    path = write(source / "a.txt", "a")
    uri = {"value": str(path), "output_file": "conf/settings.ini", "extract": False}
    fetcher.fetch("c1", {"uris": [uri]}, sandbox)
    assert (sandbox / "conf" / "settings.ini").read_text() == "a"
    assert not (sandbox / "a.txt").exists()
    assert messages(sandbox)[-2] == f"Fetched '{path}' to '{sandbox}/conf/settings.ini'"


def test_an_output_file_naming_a_directory_fails(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    path = write(source / "a.txt", "a")
    assert fetch_error(fetcher, [{"value": str(path), "output_file": "conf/"}], sandbox) == FAILED
    assert messages(sandbox)[-1] == (
        f"EXIT with status 1: Failed to fetch '{path}': `destination` was a directory"
    )


def test_output_file_decides_whether_it_is_an_archive(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    # The use docs/fetcher.md gives: a URL ending in a query, renamed so it can be extracted.
    archive = make_tar(source / "download", {"pkg/a.txt": b"a"})
    fetcher.fetch("c1", {"uris": [{"value": str(archive), "output_file": "pkg.tgz"}]}, sandbox)
    assert (sandbox / "pkg" / "a.txt").read_text() == "a"


# -- archives --------------------------------------------------------------------------------


def make_tar(path: Path, files: dict[str, bytes], compression: str = "gz", **modes: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, f"w:{compression}") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = modes.get(name.replace("/", "_").replace(".", "_"), 0o644)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, files: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files:
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("suffix", "compression"),
    [
        (".tar", ""),
        (".tar.gz", "gz"),
        (".tgz", "gz"),
        (".tar.bz2", "bz2"),
        (".tbz2", "bz2"),
        (".tar.xz", "xz"),
        (".txz", "xz"),
    ],
)
def test_tar_archives_are_extracted(
    fetcher: Fetcher, sandbox: Path, source: Path, suffix: str, compression: str
) -> None:
    files = {"app/run.sh": b"#!/bin/sh\necho hi\n", "app/data/x.txt": b"x"}
    archive = make_tar(source / f"app{suffix}", files, compression, app_run_sh=0o755)
    fetcher.fetch("c1", {"uris": [{"value": str(archive)}]}, sandbox)
    assert (sandbox / "app" / "data" / "x.txt").read_text() == "x"
    assert stat.S_IMODE((sandbox / "app" / "run.sh").stat().st_mode) == 0o755
    assert (sandbox / f"app{suffix}").exists()  # bypassing the cache, the archive stays
    # Mesos logs no "Extracted" line for what libarchive unpacks, and no warning.
    assert messages(sandbox) == [
        f"Fetching URI '{archive}'",
        f"Fetching '{archive}' directly into the sandbox directory",
        f"Fetched '{archive}' to '{sandbox}/app{suffix}'",
        f"Successfully fetched all URIs into '{sandbox}'",
    ]


def test_a_tar_is_recognised_by_content_not_by_its_suffix(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    archive = make_tar(source / "plain.tar.gz", {"a.txt": b"a"}, compression="")
    fetcher.fetch("c1", {"uris": [{"value": str(archive)}]}, sandbox)
    assert (sandbox / "a.txt").read_text() == "a"


def test_a_zip_is_extracted_keeping_its_modes(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    archive = source / "app.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        info = zipfile.ZipInfo("bin/run.sh")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        zipped.writestr(info, b"#!/bin/sh\n")
        zipped.writestr("data/x.txt", b"x")
    fetcher.fetch("c1", {"uris": [{"value": str(archive)}]}, sandbox)
    assert (sandbox / "data" / "x.txt").read_text() == "x"
    assert stat.S_IMODE((sandbox / "bin" / "run.sh").stat().st_mode) == 0o755


def test_a_zip_with_a_duplicate_entry_keeps_the_last(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive = make_zip(source / "dup.zip", [("A", b"1"), ("A", b"2")])
    fetcher.fetch("c1", {"uris": [{"value": str(archive)}]}, sandbox)
    assert (sandbox / "A").read_text() == "2"


def test_a_bare_gz_goes_through_gunzip(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    path = write(source / "notes.txt.gz", gzip.compress(b"notes"))
    fetcher.fetch("c1", {"uris": [{"value": str(path)}]}, sandbox)
    assert (sandbox / "notes.txt").read_text() == "notes"
    assert ("I", "fetcher.cpp:132", f"Extracted '{sandbox}/notes.txt.gz' into '{sandbox}'") in (
        log_lines(sandbox)
    )


def test_a_bad_gz_fails_with_gunzip_in_stderr(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    path = write(source / "notes.txt.gz", b"not gzip at all")
    assert fetch_error(fetcher, [{"value": str(path)}], sandbox) == FAILED
    assert messages(sandbox)[-2:] == [
        "gzip: stdin: not in gzip format",
        f"EXIT with status 1: Failed to fetch '{path}': Failed to extract "
        f"'{sandbox}/notes.txt.gz': 'gunzip -d -c' failed: exited with status 1",
    ]


def test_extract_false_copies_the_archive(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    archive = make_tar(source / "app.tar.gz", {"app/a.txt": b"a"})
    fetcher.fetch("c1", {"uris": [{"value": str(archive), "extract": False}]}, sandbox)
    assert (sandbox / "app.tar.gz").read_bytes() == archive.read_bytes()
    assert not (sandbox / "app").exists()


def test_a_corrupt_archive_fails(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    path = write(source / "broken.tar.gz", b"\x00garbage" * 100)
    assert fetch_error(fetcher, [{"value": str(path)}], sandbox) == FAILED
    assert messages(sandbox)[-1] == (
        f"EXIT with status 1: Failed to fetch '{path}': Failed to extract archive "
        f"'{sandbox}/broken.tar.gz' to '{sandbox}': Unrecognized archive format"
    )


def test_a_truncated_tar_gz_fails(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    archive = make_tar(source / "big.tar.gz", {"a.bin": os.urandom(200_000)})
    archive.write_bytes(archive.read_bytes()[:50_000])
    assert fetch_error(fetcher, [{"value": str(archive)}], sandbox) == FAILED
    prefix = (
        f"EXIT with status 1: Failed to fetch '{archive}': Failed to extract archive "
        f"'{sandbox}/big.tar.gz' to '{sandbox}': Failed to read archive data block: "
    )
    assert messages(sandbox)[-1].startswith(prefix)


def test_a_zip_with_a_bad_crc_fails(fetcher: Fetcher, sandbox: Path, source: Path) -> None:
    archive = make_zip(source / "bad.zip", [("world", b"hello hello\n")])
    data = archive.read_bytes()
    at = data.index(b"hello hello")
    archive.write_bytes(data[:at] + b"j" + data[at + 1 :])  # the stored CRC no longer matches
    assert fetch_error(fetcher, [{"value": str(archive)}], sandbox) == FAILED
    assert messages(sandbox)[-1] == (
        f"EXIT with status 1: Failed to fetch '{archive}': Failed to extract archive "
        f"'{sandbox}/bad.zip' to '{sandbox}': Failed to read archive data block: "
        "Bad CRC-32 for file 'world'"
    )


# -- path traversal ----------------------------------------------------------------------------


def tar_with(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"evil") if member.isfile() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


TRAVERSALS = {
    "dotdot": (member("../evil.txt"), "Path contains '..'"),
    "inner-dotdot": (member("a/../../evil.txt"), "Path contains '..'"),
    "symlink-out": (
        member("link", tarfile.SYMTYPE, "../../outside"),
        "'link' would link to '../../outside', outside the sandbox",
    ),
    "symlink-absolute": (
        member("etc", tarfile.SYMTYPE, "/etc"),
        "'etc' would link to '/etc', outside the sandbox",
    ),
    "hardlink-absolute": (
        member("passwd", tarfile.LNKTYPE, "/etc/passwd"),
        "'passwd' would link to '/etc/passwd', outside the sandbox",
    ),
    "fifo": (member("pipe", tarfile.FIFOTYPE), "'pipe' is a special file"),
}


@pytest.mark.parametrize("with_data_filter", [True, False], ids=["filter", "own-check-only"])
@pytest.mark.parametrize("case", sorted(TRAVERSALS))
def test_a_tar_cannot_write_outside_the_sandbox(
    fetcher: Fetcher,
    sandbox: Path,
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    with_data_filter: bool,
) -> None:
    if not with_data_filter:  # as on Python 3.11.0-3.11.3, without tarfile.data_filter
        monkeypatch.setattr(fetcher_module, "_FILTER_ERRORS", ())
    evil, why = TRAVERSALS[case]
    archive = tar_with(source / "evil.tar.gz", member("fine.txt"), evil)
    assert fetch_error(fetcher, [{"value": str(archive)}], sandbox) == FAILED
    assert messages(sandbox)[-1] == (
        f"EXIT with status 1: Failed to fetch '{archive}': Failed to extract archive "
        f"'{sandbox}/evil.tar.gz' to '{sandbox}': Failed to write archive header: {why}"
    )
    assert (sandbox / "fine.txt").exists()  # what came before the bad member is there
    assert not (sandbox.parent / "evil.txt").exists()
    assert not (sandbox / evil.name).exists() and not (sandbox / evil.name).is_symlink()


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="tarfile has no data filter")
def test_the_data_filter_alone_also_refuses(
    fetcher: Fetcher, sandbox: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetcher_module, "_check_member", lambda *args: None)
    archive = tar_with(source / "evil.tar.gz", member("etc", tarfile.SYMTYPE, "/etc"))
    assert fetch_error(fetcher, [{"value": str(archive)}], sandbox) == FAILED
    assert messages(sandbox)[-1].endswith(
        "Failed to write archive header: 'etc' is a link to an absolute path"
    )
    assert not (sandbox / "etc").is_symlink()


def test_a_tar_cannot_write_through_a_link_it_made(
    fetcher: Fetcher, sandbox: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetcher_module, "_FILTER_ERRORS", ())
    (sandbox / "escape").symlink_to(source)  # left by an earlier URI or the task itself
    archive = tar_with(source / "evil.tar.gz", member("escape/evil.txt"))
    assert fetch_error(fetcher, [{"value": str(archive)}], sandbox) == FAILED
    assert messages(sandbox)[-1].endswith(
        "Failed to write archive header: 'escape/evil.txt' would be extracted outside the sandbox"
    )
    assert not (source / "evil.txt").exists()


def test_absolute_names_land_inside_the_sandbox(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    # libarchive is handed the sandbox joined with each name, so "/x" becomes <sandbox>/x.
    archive = tar_with(source / "abs.tar.gz", member("/abs.txt"))
    fetcher.fetch("c1", {"uris": [{"value": str(archive)}]}, sandbox)
    assert (sandbox / "abs.txt").read_text() == "evil"


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/abs/../../evil.txt"])
def test_a_zip_cannot_write_outside_the_sandbox(
    fetcher: Fetcher, sandbox: Path, source: Path, name: str
) -> None:
    archive = make_zip(source / "evil.zip", [("fine.txt", b"ok"), (name, b"evil")])
    assert fetch_error(fetcher, [{"value": str(archive)}], sandbox) == FAILED
    assert messages(sandbox)[-1].endswith("Failed to write archive header: Path contains '..'")
    assert not (sandbox.parent / "evil.txt").exists()


# -- http --------------------------------------------------------------------------------------


def test_http_downloads_into_the_sandbox(fetcher: Fetcher, sandbox: Path, server: Server) -> None:
    server.routes["/files/app.txt"] = (200, b"from http", {})
    url = server.url("/files/app.txt")
    fetcher.fetch("c1", {"uris": [{"value": url}]}, sandbox)
    assert (sandbox / "app.txt").read_text() == "from http"
    assert messages(sandbox) == [
        f"Fetching URI '{url}'",
        f"Fetching '{url}' directly into the sandbox directory",
        f"Downloading resource from '{url}' to '{sandbox}/app.txt'",
        NOT_AN_ARCHIVE + url,
        f"Fetched '{url}' to '{sandbox}/app.txt'",
        f"Successfully fetched all URIs into '{sandbox}'",
    ]
    assert server.requests == [("GET", "/files/app.txt")]  # no HEAD without the cache


def test_http_follows_redirects_and_keeps_the_query_in_the_name(
    fetcher: Fetcher, sandbox: Path, server: Server
) -> None:
    server.routes["/old?v=1"] = (302, b"", {"Location": "/new"})
    server.routes["/new"] = (200, b"moved", {})
    fetcher.fetch("c1", {"uris": [{"value": server.url("/old?v=1")}]}, sandbox)
    assert (sandbox / "old?v=1").read_text() == "moved"


def test_an_http_archive_is_extracted(
    fetcher: Fetcher, sandbox: Path, server: Server, source: Path
) -> None:
    archive = make_tar(source / "pkg.tar.gz", {"pkg/a.txt": b"a"})
    server.routes["/pkg.tar.gz"] = (200, archive.read_bytes(), {})
    fetcher.fetch("c1", {"uris": [{"value": server.url("/pkg.tar.gz")}]}, sandbox)
    assert (sandbox / "pkg" / "a.txt").read_text() == "a"


def test_http_404_fails_with_the_code(fetcher: Fetcher, sandbox: Path, server: Server) -> None:
    url = server.url("/missing.txt")
    assert fetch_error(fetcher, [{"value": url}], sandbox) == FAILED
    assert log_lines(sandbox)[-1] == (
        "E",
        "fetcher.cpp:615",
        f"EXIT with status 1: Failed to fetch '{url}': Error downloading resource, received "
        "HTTP return code 404",
    )
    assert (sandbox / "missing.txt").read_text() == "not found\n"  # curl keeps the body


def test_an_http_answer_other_than_200_fails(
    fetcher: Fetcher, sandbox: Path, server: Server
) -> None:
    server.routes["/partial"] = (206, b"part", {})
    assert fetch_error(fetcher, [{"value": server.url("/partial")}], sandbox) == FAILED
    assert messages(sandbox)[-1].endswith("received HTTP return code 206")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_host_fails(fetcher: Fetcher, sandbox: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/a.txt"
    assert fetch_error(fetcher, [{"value": url}], sandbox) == FAILED
    assert messages(sandbox)[-1] == (
        f"EXIT with status 1: Failed to fetch '{url}': Error downloading resource: "
        "Couldn't connect to server"
    )


def test_an_unknown_host_fails(
    fetcher: Fetcher, sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_such_host(*args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)  # no DNS in a unit test
    url = "http://no-such-host.invalid/a.txt"
    assert fetch_error(fetcher, [{"value": url}], sandbox) == FAILED
    assert messages(sandbox)[-1].endswith(
        ": Error downloading resource: Couldn't resolve host name"
    )


def test_a_stalled_download_times_out(tmp_path: Path, sandbox: Path, server: Server) -> None:
    release = threading.Event()

    def stall(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "10")
        handler.end_headers()
        handler.wfile.write(b"12")
        handler.wfile.flush()
        release.wait(10)

    server.routes["/slow"] = stall
    fetcher = Fetcher(tmp_path / "cache", stall_timeout=0.2)
    try:
        assert fetch_error(fetcher, [{"value": server.url("/slow")}], sandbox) == FAILED
    finally:
        release.set()
    assert messages(sandbox)[-1].endswith(": Error downloading resource: Timeout was reached")
    assert fetcher_info(sandbox)["stall_timeout"] == {"nanoseconds": 200_000_000}


def test_a_truncated_body_fails(fetcher: Fetcher, sandbox: Path, server: Server) -> None:
    def short(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b"only ten b")

    server.routes["/short"] = short
    assert fetch_error(fetcher, [{"value": server.url("/short")}], sandbox) == FAILED
    assert messages(sandbox)[-1].endswith(
        ": Error downloading resource: Transferred a partial file"
    )


def test_downloads_stop_at_the_size_guard(tmp_path: Path, sandbox: Path, server: Server) -> None:
    def unannounced(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)  # no Content-Length: the size shows only while reading
        handler.end_headers()
        handler.wfile.write(b"x" * 100)

    server.routes["/announced"] = (200, b"x" * 100, {})
    server.routes["/unannounced"] = unannounced
    fetcher = Fetcher(tmp_path / "cache", max_download=99)
    for path in ("/announced", "/unannounced"):
        assert fetch_error(fetcher, [{"value": server.url(path)}], sandbox) == FAILED
        assert messages(sandbox)[-1].endswith(
            ": Error downloading resource: Maximum file size exceeded"
        )
    Fetcher(tmp_path / "cache2", max_download=100).fetch(
        "c1", {"uris": [{"value": server.url("/unannounced")}]}, sandbox
    )
    assert (sandbox / "unannounced").read_bytes() == b"x" * 100


def test_ftp_is_not_supported(fetcher: Fetcher, sandbox: Path) -> None:
    url = "ftp://127.0.0.1/a.txt"
    assert fetch_error(fetcher, [{"value": url}], sandbox) == FAILED
    assert messages(sandbox)[-1].endswith(": Error downloading resource: Unsupported protocol")


# -- the Hadoop client, for any other scheme -------------------------------------------------


def test_other_schemes_need_the_hadoop_client(
    fetcher: Fetcher, sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HADOOP_HOME", str(tmp_path / "no-hadoop"))
    url = "hdfs://namenode/data/a.txt"
    assert fetch_error(fetcher, [{"value": url}], sandbox) == FAILED
    # `sh -c "hadoop version 2>&1"` exits 127; Mesos prints the raw wait status.
    assert messages(sandbox)[-1] == (
        f"EXIT with status 1: Failed to fetch '{url}': Failed to create HDFS client: Hadoop "
        "client is not available, exit status: 32512"
    )
    assert "not found" in (sandbox / "stdout").read_text()  # the shell's complaint, on stdout


def test_the_hadoop_client_copies_to_the_sandbox(
    fetcher: Fetcher, sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "hadoop"
    write(
        home / "bin" / "hadoop",
        '#!/bin/sh\n[ "$1" = version ] && { echo "Hadoop 3"; exit 0; }\n'
        '[ "$3" = hdfs://namenode/missing ] && { echo "no such file" >&2; exit 1; }\n'
        'echo "$3" > "$4"\n',
        0o755,
    )
    monkeypatch.setenv("HADOOP_HOME", str(home))
    url = "hdfs://namenode/data/a.txt"
    fetcher.fetch("c1", {"uris": [{"value": url}]}, sandbox)
    assert (sandbox / "a.txt").read_text() == f"{url}\n"
    assert (
        "I",
        "fetcher.cpp:149",
        f"Downloading resource with Hadoop client from '{url}' to '{sandbox}/a.txt'",
    ) in log_lines(sandbox)
    missing = "hdfs://namenode/missing"
    assert fetch_error(fetcher, [{"value": missing}], sandbox) == FAILED
    # The message spans two lines: the Hadoop client's stderr ends with a newline.
    assert (
        (sandbox / "stderr")
        .read_text()
        .endswith(
            f"EXIT with status 1: Failed to fetch '{missing}': HDFS copyToLocal failed: Unexpected "
            "result from the subprocess: status='256', stdout='', stderr='no such file\n'\n"
        )
    )


# -- the cache -----------------------------------------------------------------------------------


def test_the_cache_downloads_once_then_copies(
    fetcher: Fetcher, tmp_path: Path, server: Server
) -> None:
    server.routes["/tool.sh"] = (200, b"#!/bin/sh\n", {})
    url = server.url("/tool.sh")
    first, second = tmp_path / "s1", tmp_path / "s2"
    for sandbox in (first, second):
        sandbox.mkdir()
        uri = {"value": url, "cache": True, "executable": True}
        fetcher.fetch("c1", {"uris": [uri]}, sandbox)
        assert (sandbox / "tool.sh").read_bytes() == b"#!/bin/sh\n"
        assert stat.S_IMODE((sandbox / "tool.sh").stat().st_mode) == 0o755
    assert server.gets("/tool.sh") == 1
    assert server.requests.count(("HEAD", "/tool.sh")) == 1  # fetchSize, before reserving
    cached = fetcher.cache_dir / "c1-tool.sh"
    assert cached.read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE(cached.stat().st_mode) & 0o111 == 0  # chmod only in the sandbox
    assert fetcher.cache_used == len(b"#!/bin/sh\n")
    assert actions(first) == ["DOWNLOAD_AND_CACHE"]
    assert actions(second) == ["RETRIEVE_FROM_CACHE"]
    assert fetcher_info(second)["items"][0]["cache_filename"] == "c1-tool.sh"
    assert messages(first) == [
        f"Fetching URI '{url}'",
        f"Downloading resource from '{url}' to '{cached}'",
        f"Fetching URI '{url}' from cache",
        f"Fetched '{url}' to '{first}/tool.sh'",
        f"Successfully fetched all URIs into '{first}'",
    ]
    assert messages(second) == [
        f"Fetching URI '{url}'",
        f"Fetching URI '{url}' from cache",
        f"Fetched '{url}' to '{second}/tool.sh'",
        f"Successfully fetched all URIs into '{second}'",
    ]


def test_a_cached_archive_is_extracted_without_a_copy(
    fetcher: Fetcher, sandbox: Path, source: Path
) -> None:
    archive = make_tar(source / "pkg.tar.gz", {"pkg/a.txt": b"a"})
    fetcher.fetch("c1", {"uris": [{"value": str(archive), "cache": True}]}, sandbox)
    assert (sandbox / "pkg" / "a.txt").read_text() == "a"
    assert not (sandbox / "pkg.tar.gz").exists()
    assert messages(sandbox)[-2] == f"Fetched '{archive}' to '{sandbox}'"


def test_the_cache_is_per_user(fetcher: Fetcher, tmp_path: Path, source: Path) -> None:
    path = write(source / "a.txt", "a")
    uri = {"value": str(path), "cache": True, "extract": False}
    for user in ("alice", "bob", "alice"):
        sandbox = tmp_path / f"s-{user}"
        sandbox.mkdir(exist_ok=True)
        fetcher.fetch("c1", {"uris": [uri]}, sandbox, user)
    assert (fetcher.cache_dir / "alice" / "c1-a.txt").exists()
    assert (fetcher.cache_dir / "bob" / "c2-a.txt").exists()
    assert actions(tmp_path / "s-alice") == ["RETRIEVE_FROM_CACHE"]
    # The command's own user wins over the framework's.
    fetcher.fetch("c1", {"uris": [uri], "user": "carol"}, tmp_path / "s-bob", "bob")
    assert fetcher_info(tmp_path / "s-bob")["user"] == "carol"
    assert actions(tmp_path / "s-bob") == ["DOWNLOAD_AND_CACHE"]


def test_a_cache_hit_serves_the_cached_copy(fetcher: Fetcher, tmp_path: Path, source: Path) -> None:
    path = write(source / "a.txt", "version 1")
    uri = {"value": str(path), "cache": True}
    (tmp_path / "s1").mkdir()
    (tmp_path / "s2").mkdir()
    fetcher.fetch("c1", {"uris": [uri]}, tmp_path / "s1")
    write(path, "version 2")  # docs/fetcher.md: no refresh; use a new URI for new content
    fetcher.fetch("c2", {"uris": [uri]}, tmp_path / "s2")
    assert (tmp_path / "s2" / "a.txt").read_text() == "version 1"
    assert messages(tmp_path / "s2")[-3] == NOT_AN_ARCHIVE + str(path)


def test_the_cache_evicts_the_least_recently_used(tmp_path: Path, source: Path) -> None:
    fetcher = Fetcher(tmp_path / "cache", cache_size=250)
    sandbox = tmp_path / "s"
    sandbox.mkdir()

    def fetch(name: str) -> str:
        path = source / name
        if not path.exists():
            write(path, name[0] * 100)
        fetcher.fetch("c1", {"uris": [{"value": str(path), "cache": True}]}, sandbox)
        return actions(sandbox)[0]

    assert fetch("a.txt") == "DOWNLOAD_AND_CACHE"
    assert fetch("b.txt") == "DOWNLOAD_AND_CACHE"
    assert fetch("a.txt") == "RETRIEVE_FROM_CACHE"  # "a" is now the most recently used
    assert fetch("c.txt") == "DOWNLOAD_AND_CACHE"  # 50 bytes free: "b" goes
    assert sorted(p.name for p in fetcher.cache_dir.iterdir()) == ["c1-a.txt", "c3-c.txt"]
    assert fetcher.cache_used == 200
    assert fetch("a.txt") == "RETRIEVE_FROM_CACHE"
    assert fetch("b.txt") == "DOWNLOAD_AND_CACHE"  # back, evicting "c"
    assert sorted(p.name for p in fetcher.cache_dir.iterdir()) == ["c1-a.txt", "c4-b.txt"]


def test_what_does_not_fit_bypasses_the_cache(
    tmp_path: Path, sandbox: Path, source: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fetcher = Fetcher(tmp_path / "cache", cache_size=50)
    path = write(source / "big.txt", "x" * 100)
    with caplog.at_level(logging.WARNING, logger="localmesos"):
        fetcher.fetch("c1", {"uris": [{"value": str(path), "cache": True}]}, sandbox)
    assert (sandbox / "big.txt").read_text() == "x" * 100
    assert actions(sandbox) == ["BYPASS_CACHE"]
    assert fetcher.cache_used == 0
    assert caplog.messages == [
        f"Reverting to fetching directly into the sandbox for '{path}', due to failure to fetch "
        "through the cache, with error: Failed to reserve space in the cache: Could not free up "
        "enough fetcher cache space"
    ]


def test_a_zero_content_length_bypasses_the_cache(
    fetcher: Fetcher, sandbox: Path, server: Server
) -> None:
    def no_length_on_head(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "0" if handler.command == "HEAD" else "4")
        handler.end_headers()
        if handler.command == "GET":
            handler.wfile.write(b"data")

    server.routes["/odd"] = no_length_on_head
    fetcher.fetch("c1", {"uris": [{"value": server.url("/odd"), "cache": True}]}, sandbox)
    assert actions(sandbox) == ["BYPASS_CACHE"]
    assert (sandbox / "odd").read_text() == "data"


def test_a_failed_cache_download_leaves_no_entry(
    fetcher: Fetcher, tmp_path: Path, server: Server
) -> None:
    url = server.url("/later.txt")
    server.routes["/later.txt"] = (503, b"busy", {})
    (tmp_path / "s1").mkdir()
    (tmp_path / "s2").mkdir()
    assert fetch_error(fetcher, [{"value": url, "cache": True}], tmp_path / "s1") == FAILED
    assert list(fetcher.cache_dir.iterdir()) == []  # the error page is not kept
    assert fetcher.cache_used == 0
    server.routes["/later.txt"] = (200, b"ready", {})
    fetcher.fetch("c2", {"uris": [{"value": url, "cache": True}]}, tmp_path / "s2")
    assert actions(tmp_path / "s2") == ["DOWNLOAD_AND_CACHE"]
    assert (tmp_path / "s2" / "later.txt").read_text() == "ready"


def test_one_uri_twice_with_other_options_downloads_once(
    fetcher: Fetcher, sandbox: Path, server: Server
) -> None:
    server.routes["/run.sh"] = (200, b"#!/bin/sh\n", {})
    url = server.url("/run.sh")
    uris = [
        {"value": url, "cache": True},
        {"value": url, "cache": True, "executable": True, "output_file": "bin/run"},
    ]
    fetcher.fetch("c1", {"uris": uris}, sandbox)
    assert server.gets("/run.sh") == 1
    assert actions(sandbox) == ["DOWNLOAD_AND_CACHE", "DOWNLOAD_AND_CACHE"]
    assert stat.S_IMODE((sandbox / "bin" / "run").stat().st_mode) == 0o755
    assert stat.S_IMODE((sandbox / "run.sh").stat().st_mode) & 0o111 == 0


def test_a_download_in_progress_is_not_waited_for(
    fetcher: Fetcher, tmp_path: Path, server: Server
) -> None:
    release, started = threading.Event(), threading.Event()

    def slow_first(handler: BaseHTTPRequestHandler) -> None:
        if handler.command == "GET" and not started.is_set():
            started.set()
            release.wait(10)
        handler.send_response(200)
        handler.send_header("Content-Length", "4")
        handler.end_headers()
        if handler.command == "GET":
            handler.wfile.write(b"data")

    server.routes["/shared"] = slow_first
    uris = [{"value": server.url("/shared"), "cache": True}]
    (tmp_path / "s1").mkdir()
    (tmp_path / "s2").mkdir()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            fetcher.fetch("c1", {"uris": uris}, tmp_path / "s1")
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(10)
        fetcher.fetch("c2", {"uris": uris}, tmp_path / "s2")  # would hang if it waited
    finally:
        release.set()
        thread.join(10)
    assert errors == []
    assert (tmp_path / "s2" / "shared").read_text() == "data"
    assert (tmp_path / "s1" / "shared").read_text() == "data"
    # Line 0 of s1 is written before its download starts; s2 read the books after that.
    assert fetcher_info_of(tmp_path / "s2") == ["BYPASS_CACHE"]
    assert fetcher_info_of(tmp_path / "s1") == ["DOWNLOAD_AND_CACHE"]


def fetcher_info_of(sandbox: Path) -> list[str]:
    """actions() without the thread check: this fetch ran on another thread."""
    first = (sandbox / "stderr").read_text().splitlines()[0]
    info = json.loads(first.split("] Fetcher Info: ", 1)[1])
    return [item["action"] for item in info["items"]]


def test_the_cache_starts_empty(tmp_path: Path) -> None:
    write(tmp_path / "cache" / "c1-old.txt", "left by a previous agent")
    Fetcher(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_log_prefix_is_glogs(
    fetcher: Fetcher, sandbox: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # glog: severity, MMDD hh:mm:ss.uuuuuu, the thread id right-aligned in 5, file:line.
    monkeypatch.setattr(threading, "get_native_id", lambda: 42)
    path = write(source / "a.txt", "a")
    fetcher.fetch("c1", {"uris": [{"value": str(path)}]}, sandbox)
    first = (sandbox / "stderr").read_text().splitlines()[0]
    assert re.match(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6}    42 fetcher\.cpp:562\] Fetcher Info: ", first)
