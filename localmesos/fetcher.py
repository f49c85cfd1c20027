"""The Mesos fetcher: a task's or an executor's `CommandInfo.uris` into its sandbox before the
command starts.

Two halves, as in Mesos. `Fetcher` is the agent's FetcherProcess
(src/slave/containerizer/fetcher.cpp): it validates the URIs, keeps the cache's books and
decides for each URI whether to bypass the cache, download into it or retrieve from it. `_Run` is
the mesos-fetcher program (src/launcher/fetcher.cpp): it copies, downloads, extracts and chmods,
and writes its glog lines to the sandbox's `stderr`, to which the executor's own stderr is then
appended. The messages are Mesos's, word for word, so that a sandbox reads the same.

`Fetcher.fetch` blocks for as long as the downloads take, so the agent calls it on a worker
thread and dispatches the outcome back to its actor, as MesosContainerizer goes on with
`defer(self(), ...)` once the fetch is over (agent/containerizer.py `fetch`); a failure becomes
TASK_FAILED, SOURCE_AGENT, REASON_CONTAINER_LAUNCH_FAILED, "Failed to launch container: " and
the FetchError's text (slave.cpp `executorLaunched`).

One `Fetcher` serves all of an agent's fetches at once, as Mesos runs one mesos-fetcher per
container; only the cache's books are shared, under a lock. When its agent dies, `stop` ends
every fetch under way where it is (a download between two reads), so that nothing a dead agent
started goes on writing into sandboxes and into a cache directory that the agent's next life
empties and fills again.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.client import HTTPException, IncompleteRead, RemoteDisconnected
from pathlib import Path
from typing import IO, Any, NoReturn

log = logging.getLogger("localmesos")

DEFAULT_CACHE_SIZE = 2 * 1024**3  # slave/constants.hpp DEFAULT_FETCHER_CACHE_SIZE
DEFAULT_STALL_TIMEOUT = 60.0  # slave/constants.hpp DEFAULT_FETCHER_STALL_TIMEOUT
# Mesos downloads without a limit. One laptop running a whole workshop cluster should not fill
# its disk because a URI points at something huge, so localmesos stops at this size.
DEFAULT_MAX_DOWNLOAD = 1024**3
# launcher/fetcher.cpp `extract`: what goes to libarchive; a bare ".gz" goes to gunzip.
ARCHIVES = (".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip")
NET_SCHEMES = ("http://", "https://", "ftp://", "ftps://")  # Fetcher::isNetUri
_WHITESPACE = " \t\n\r"  # stout's strings::WHITESPACE, trimmed off the front of a URI
_URI_FIELDS = ("value", "executable", "extract", "cache", "output_file")

Item = tuple[dict, str, "_Entry | None"]  # a URI, its action (fetcher.proto), its cache entry


class FetchError(Exception):
    """A fetch failed. str() is what MesosContainerizer's launch fails with; the agent reports
    the task TASK_FAILED with "Failed to launch container: " and this."""


class _Failed(Exception):
    """One URI could not be fetched (an `Error` in mesos-fetcher)."""


class _Stopped(Exception):
    """The fetcher was stopped (its agent died) while this fetch was under way."""


@dataclass(eq=False)
class _Entry:
    """A cache file (FetcherProcess::Cache::Entry), pending until its first download is over."""

    key: str
    path: Path
    size: int = 0
    refs: int = 1
    done: bool = False
    failed: bool = False


class Fetcher:
    """The agent's fetcher, its cache in ``cache_dir`` (the agent's --fetcher_cache_dir), which
    it empties first, as Mesos does: give it a directory of its own."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        frameworks_home: str = "",
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        max_download: int = DEFAULT_MAX_DOWNLOAD,
    ) -> None:
        self.cache_dir = Path(cache_dir).absolute()
        self.cache_size = cache_size
        self.frameworks_home = frameworks_home
        self.stall_timeout = stall_timeout
        self.max_download = max_download
        shutil.rmtree(self.cache_dir, ignore_errors=True)  # Fetcher::Fetcher: a fresh cache
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._used = 0
        self._serial = 0
        self._stopped = threading.Event()

    def stop(self) -> None:
        """The agent died: each fetch under way stops at its next step, writes nothing more,
        and leaves the cache's files alone; new fetches fail at once."""
        self._stopped.set()

    def check_stopped(self) -> None:
        if self._stopped.is_set():
            raise _Stopped

    @property
    def cache_used(self) -> int:
        """Bytes held or reserved in the cache (containerizer/fetcher/cache_size_used_bytes)."""
        with self._lock:
            return self._used

    def fetch(
        self, container_id: str, command: dict, sandbox: Path, user: str | None = None
    ) -> None:
        """Fetch ``command["uris"]`` into ``sandbox``, or raise FetchError with Mesos's message.
        ``user`` is the framework's; the command's own user wins (FetcherProcess::fetch)."""
        if self._stopped.is_set():
            raise FetchError("The fetcher was stopped")
        uris = command.get("uris") or []
        problem = _validate(uris)
        if problem:
            raise FetchError(f"Could not fetch: {problem}")
        user = command.get("user", user) or None
        cache_dir = self.cache_dir / user if user else self.cache_dir
        held: list[_Entry] = []
        new: dict[str, _Entry] = {}
        items: list[Item] = []
        ok = False
        try:
            for uri in uris:
                if any(uri == other for other, _, _ in items):
                    continue  # Mesos keys its items by the whole URI message
                action, entry = "BYPASS_CACHE", None
                if uri.get("cache"):
                    action, entry = self._plan(uri["value"], user, cache_dir, held, new)
                items.append((uri, action, entry))
            _Run(self, container_id, os.path.abspath(sandbox), cache_dir, user).run(items)
            ok = True
        except _Stopped:
            raise FetchError("The fetcher was stopped") from None
        finally:
            if not self._stopped.is_set():
                self._settle(held, new, ok)

    # -- the cache's books (FetcherProcess::Cache) ---------------------------------------------

    def _plan(
        self, value: str, user: str | None, cache_dir: Path, held: list, new: dict
    ) -> tuple[str, _Entry | None]:
        key = f"{user}@{value}" if user else value  # fetcher.cpp `cacheKey`
        with self._lock:
            entry = new.get(value)
            if entry is not None:  # the same URI again in this fetch, other fields differing
                if entry.failed:
                    return "BYPASS_CACHE", None
                entry.refs += 1
                held.append(entry)
                return "DOWNLOAD_AND_CACHE", entry
            entry = self._entries.get(key)
            if entry is not None and entry.done and not entry.path.exists():
                log.warning("fetcher: cache file %s is gone; removing its entry", entry.path)
                self._remove(entry)
                entry = None
            if entry is not None:
                entry.refs += 1
                held.append(entry)
                self._entries.move_to_end(key)
                if entry.done:
                    return "RETRIEVE_FROM_CACHE", entry
                # Mesos waits for the other fetch's download. Two fetches that each wait for
                # the other's download would wait forever, so this one fetches directly.
                return _revert(value, f"'{key}' is still being downloaded by another fetch")
            self._serial += 1
            entry = _Entry(key, cache_dir / _cache_filename(self._serial, value))
            self._entries[key] = entry
            held.append(entry)
            new[value] = entry
        try:
            size = self._size(value)
        except _Failed as error:
            reason = f"Could not determine size of cache file for '{key}' with error: {error}"
        else:
            with self._lock:
                if self._reserve(size):
                    entry.size = size
                    self._used += size
                    return "DOWNLOAD_AND_CACHE", entry
            reason = (
                "Failed to reserve space in the cache: Could not free up enough fetcher cache space"
            )
        with self._lock:
            self._discard(entry)
        return _revert(value, reason)

    def _size(self, value: str) -> int:
        """fetcher.cpp `fetchSize`: what to reserve before downloading into the cache."""
        source = value.lstrip(_WHITESPACE)
        path = _local_path(source, self.frameworks_home)
        if path is not None:
            try:
                return os.stat(path).st_size
            except OSError as error:
                message = f"Could not determine file size for: '{path}', error: {error.strerror}"
                raise _Failed(message) from None
        if not source.startswith(NET_SCHEMES):
            raise _Failed("localmesos does not ask the Hadoop client for sizes")
        length = _content_length(source, self.stall_timeout)
        if length == 0:
            raise _Failed(f"URI reported content-length 0: {source}")
        return length

    def _reserve(self, size: int) -> bool:
        """Cache::reserve: evict unused entries, least recently used first, to make room."""
        missing = size - max(self.cache_size - self._used, 0)
        if missing <= 0:
            return True
        victims, freed = [], 0
        for entry in self._entries.values():
            if entry.refs == 0:
                victims.append(entry)
                freed += entry.size
                if freed >= missing:
                    break
        else:
            return False
        for entry in victims:
            self._remove(entry)
        return True

    def _discard(self, entry: _Entry) -> None:
        entry.failed = entry.done = True
        self._remove(entry)

    def _remove(self, entry: _Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        entry.path.unlink(missing_ok=True)  # a partial download goes too
        self._used -= entry.size
        entry.size = 0

    def _settle(self, held: list[_Entry], new: dict[str, _Entry], ok: bool) -> None:
        """FetcherProcess::__fetch once mesos-fetcher is over: release the entries, and complete
        the new ones at their real size (Cache::adjust), or drop them if the fetch failed."""
        with self._lock:
            for entry in held:
                entry.refs -= 1
            for entry in new.values():
                if entry.done:
                    continue
                try:
                    actual = entry.path.lstat().st_size if ok else None
                except OSError:
                    actual = None
                if actual is None or actual > entry.size:
                    # Larger than reserved: Mesos deletes it rather than overflow the cache.
                    self._discard(entry)
                    continue
                self._used -= entry.size - actual
                entry.size = actual
                entry.done = True


def _revert(value: str, reason: str) -> tuple[str, None]:
    log.warning(
        "Reverting to fetching directly into the sandbox for '%s', due to failure to fetch "
        "through the cache, with error: %s",
        value,
        reason,
    )
    return "BYPASS_CACHE", None


class _Run:
    """One run of mesos-fetcher for one container (launcher/fetcher.cpp `main`)."""

    def __init__(
        self, fetcher: Fetcher, container_id: str, sandbox: str, cache_dir: Path, user: str | None
    ) -> None:
        self.fetcher = fetcher
        self.container_id = container_id
        self.sandbox = sandbox
        self.cache_dir = cache_dir
        self.user = user
        self.out: IO[bytes]
        self.err: IO[bytes]

    def run(self, items: list[Item]) -> None:
        # FetcherProcess::run truncates stdout and stderr before the fetcher writes to them;
        # the container's own output is appended later (Subprocess::PATH opens with O_APPEND).
        files: list[IO[bytes]] = []
        for name in ("stdout", "stderr"):
            try:
                files.append(open(os.path.join(self.sandbox, name), "wb", buffering=0))  # noqa: SIM115
            except OSError as error:
                for file in files:
                    file.close()
                raise FetchError(f"Failed to create '{name}' file: {error.strerror}") from None
        self.out, self.err = files
        with self.out, self.err:
            if items:
                self._fetch_all(items)

    def _fetch_all(self, items: list[Item]) -> None:
        self._log("I", 562, f"Fetcher Info: {self._info(items)}")
        if any(action != "BYPASS_CACHE" for _, action, _ in items):
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                self._exit(578, f"Could not create the fetcher cache directory: {error.strerror}")
        for uri, action, entry in items:
            value = uri["value"]
            self.fetcher.check_stopped()
            try:
                fetched = self._fetch(uri, action, entry)
            except _Stopped:
                raise
            except _Failed as error:
                self._exit(615, f"Failed to fetch '{value}': {error}")
            except Exception as error:  # a bug here must still fail the launch, not hang it
                log.exception("fetcher: unexpected error fetching %s", value)
                self._exit(615, f"Failed to fetch '{value}': {error!r}")
            self._log("I", 618, f"Fetched '{value}' to '{fetched}'")
        self._log("I", 623, f"Successfully fetched all URIs into '{self.sandbox}'")

    def _exit(self, line: int, message: str) -> NoReturn:
        """stout's EXIT(EXIT_FAILURE); the agent sees the status, not the message."""
        self._log("E", line, f"EXIT with status 1: {message}")
        how = "exited with status 1"
        raise FetchError(f"Failed to fetch all URIs for container '{self.container_id}': {how}")

    def _info(self, items: list[Item]) -> str:
        """MESOS_FETCHER_INFO as the agent stringifies it: a JSON::Object, keys sorted."""
        info: dict[str, Any] = {
            "sandbox_directory": self.sandbox,
            "cache_directory": str(self.cache_dir),
            "stall_timeout": {"nanoseconds": int(self.fetcher.stall_timeout * 1e9)},
            "items": [
                {
                    "action": action,
                    "uri": {"extract": True} | {k: uri[k] for k in _URI_FIELDS if k in uri},
                }
                | ({"cache_filename": entry.path.name} if entry else {})
                for uri, action, entry in items
            ],
        }
        if self.user:
            info["user"] = self.user
        if self.fetcher.frameworks_home:
            info["frameworks_home"] = self.fetcher.frameworks_home
        return json.dumps(info, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def _log(self, severity: str, line: int, message: str) -> None:
        """A glog line as mesos-fetcher writes it. Its thread id is the fetcher process's own
        in Mesos; here it is the worker thread's."""
        now = datetime.now().strftime("%m%d %H:%M:%S.%f")
        tid = threading.get_native_id()
        self.err.write(f"{severity}{now} {tid:>5} fetcher.cpp:{line}] {message}\n".encode())

    def _fetch(self, uri: dict, action: str, entry: _Entry | None) -> str:
        """Returns the file fetched, or the sandbox if a cached archive was extracted."""
        self._log("I", 459, f"Fetching URI '{uri['value']}'")
        if entry is None:
            return self._bypass(uri)
        if action == "DOWNLOAD_AND_CACHE" and not entry.path.exists():
            self._download(uri["value"], str(entry.path))
        return self._from_cache(uri, str(entry.path))

    def _bypass(self, uri: dict) -> str:
        self._log("I", 290, f"Fetching '{uri['value']}' directly into the sandbox directory")
        path = self._output(uri)
        self._download(uri["value"], path)
        if uri.get("executable"):  # "executable" wins over "extract" (docs/fetcher.md)
            return self._chmod(path)
        if uri.get("extract", True) and not self._extract(path):
            self._not_an_archive(332, uri["value"])
        return path  # an extracted archive stays next to what came out of it

    def _from_cache(self, uri: dict, source: str) -> str:
        self._log("I", 349, f"Fetching URI '{uri['value']}' from cache")
        path = self._output(uri)
        if uri.get("executable"):
            self._copy(source, path)
            return self._chmod(path)
        if uri.get("extract", True):
            if self._extract(source):
                return self.sandbox
            self._not_an_archive(394, uri["value"])
        self._copy(source, path)
        return path

    def _not_an_archive(self, line: int, value: str) -> None:
        self._log(
            "W",
            line,
            "Copying instead of extracting resource from URI with 'extract' flag, because it "
            f"does not seem to be an archive: {value}",
        )

    def _output(self, uri: dict) -> str:
        if "output_file" not in uri:
            return os.path.join(self.sandbox, _basename(uri["value"]))
        dirname = posixpath.dirname(uri["output_file"])
        if dirname:
            try:
                os.makedirs(os.path.join(self.sandbox, dirname), exist_ok=True)
            except OSError as error:
                message = f"Unable to create subdirectory {dirname} in sandbox: {error.strerror}"
                raise _Failed(message) from None
        return os.path.join(self.sandbox, uri["output_file"])

    def _download(self, value: str, path: str) -> None:
        """launcher/fetcher.cpp `download`: a local copy, curl, or the Hadoop client."""
        source = value.lstrip(_WHITESPACE)
        local = _local_path(source, self.fetcher.frameworks_home, self._prepended)
        if local is not None:
            self._copy(local, path)
        elif source.startswith(NET_SCHEMES):
            self._download_net(source, path)
        else:
            self._download_hadoop(source, path)

    def _prepended(self, path: str) -> None:
        # Fetcher::uriToLocalPath logs this, in src/slave/containerizer/fetcher.cpp.
        self._log(
            "I", 215, f"Prepended Mesos frameworks home to relative path, making it: '{path}'"
        )

    def _copy(self, source: str, destination: str) -> None:
        """stout's os::copyfile runs `cp`, whose complaints land in the sandbox's stderr."""
        if os.path.isdir(source) or source.endswith("/"):
            raise _Failed("`source` was a directory")
        if os.path.isdir(destination) or destination.endswith("/"):
            raise _Failed("`destination` was a directory")
        if not os.path.isabs(source):  # a relative --frameworks_home
            raise _Failed("`source` was a relative path")
        status = self._spawn(["cp", source, destination])
        if status != 0:
            raise _Failed(f"cp failed with status: {status}")

    def _chmod(self, path: str) -> str:
        try:
            os.chmod(path, 0o755)
        except OSError as error:
            raise _Failed(f"Failed to chmod executable '{path}': {error.strerror}") from None
        return path

    def _spawn(self, argv: list[str], stdin: Any = subprocess.DEVNULL, stdout: Any = None) -> int:
        """Run ``argv`` as the fetcher's child; its raw wait status, as Mesos prints it."""
        try:
            code = subprocess.call(argv, stdin=stdin, stdout=stdout or self.out, stderr=self.err)
        except OSError as error:
            raise _Failed(f"Failed to run '{argv[0]}': {error.strerror}") from None
        return _raw(code)

    def _extract(self, source: str) -> bool:
        """launcher/fetcher.cpp `extract`: False if ``source`` does not look like an archive."""
        directory = self.sandbox
        if source.endswith(ARCHIVES):
            try:
                _unpack(source, directory)
            except _Failed as error:
                message = f"Failed to extract archive '{source}' to '{directory}': {error}"
                raise _Failed(message) from None
            return True  # Mesos logs "Extracted" only after gunzip
        if not source.endswith(".gz"):
            return False
        target = os.path.join(directory, _path_basename(source[:-3]))
        with open(source, "rb") as stdin, open(target, "ab") as stdout:
            status = self._spawn(["gunzip", "-d", "-c"], stdin=stdin, stdout=stdout)
        if status != 0:
            raise _Failed(f"Failed to extract '{source}': 'gunzip -d -c' failed: {_how(status)}")
        self._log("I", 132, f"Extracted '{source}' into '{directory}'")
        return True

    def _download_net(self, url: str, path: str) -> None:
        """stout's net::download: libcurl, following redirects; curl's words for errors."""
        if url.startswith(("ftp://", "ftps://")):
            raise _Failed("Error downloading resource: Unsupported protocol")
        self._log("I", 175, f"Downloading resource from '{url}' to '{path}'")
        try:
            response = urllib.request.urlopen(url, timeout=self.fetcher.stall_timeout)
            code = response.status
        except urllib.error.HTTPError as error:  # curl saves the error page all the same
            response, code = error, error.code
        except (OSError, HTTPException, ValueError) as error:
            raise _Failed(f"Error downloading resource: {_curl_message(error)}") from None
        with response:
            self.fetcher.check_stopped()
            failure = _save(response, path, self.fetcher.max_download, self.fetcher.check_stopped)
        if failure:
            raise _Failed(f"Error downloading resource: {failure}")
        if code != 200:
            raise _Failed(f"Error downloading resource, received HTTP return code {code}")

    def _download_hadoop(self, uri: str, path: str) -> None:
        """src/hdfs/hdfs.cpp: `hadoop version` must work, then `hadoop fs -copyToLocal`."""
        home = os.environ.get("HADOOP_HOME")
        hadoop = os.path.join(home, "bin", "hadoop") if home else "hadoop"
        status = self._spawn(["sh", "-c", f"{hadoop} version 2>&1"])
        if status != 0:
            why = f"Hadoop client is not available, exit status: {status}"
            raise _Failed(f"Failed to create HDFS client: {why}")
        self._log("I", 149, f"Downloading resource with Hadoop client from '{uri}' to '{path}'")
        argv = [hadoop, "fs", "-copyToLocal", uri, path]
        copy = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if copy.returncode != 0:
            raise _Failed(
                "HDFS copyToLocal failed: Unexpected result from the subprocess: "
                f"status='{_raw(copy.returncode)}', stdout='{copy.stdout}', stderr='{copy.stderr}'"
            )


def _save(response: Any, path: str, limit: int, check_stopped: Callable[[], None]) -> str | None:
    """Write the body to ``path``; what went wrong, in curl's words, or None. Raises _Stopped
    between two reads once the fetcher is stopped."""
    length = response.headers.get("Content-Length", "")
    expected = int(length) if length.isdigit() else None
    if expected is not None and expected > limit:
        return "Maximum file size exceeded"
    received = 0
    try:
        out = open(path, "wb")  # noqa: SIM115
    except OSError as error:
        return error.strerror
    with out:
        while True:
            try:
                chunk = response.read(64 * 1024)
            except (OSError, HTTPException) as error:
                return _curl_message(error)
            check_stopped()
            if not chunk:
                break
            received += len(chunk)
            if received > limit:
                return "Maximum file size exceeded"
            try:
                out.write(chunk)
            except OSError:
                return "Failed writing received data to disk/application"
    if expected is not None and received < expected:
        return "Transferred a partial file"
    return None


def _validate(uris: list[dict]) -> str | None:
    """validateUris in src/slave/containerizer/fetcher.cpp, before anything is fetched."""
    for uri in uris:
        if not isinstance(uri, dict) or not isinstance(uri.get("value"), str):
            return f"a URI needs a string 'value': {uri!r}"
        try:
            _basename(uri["value"])
        except _Failed as error:
            return str(error)
        if "output_file" in uri:
            output = uri["output_file"]
            if not isinstance(output, str) or output == "":
                return "URI output file path is empty"
            # Mesos checks only for a leading '/' (a TODO there asks for more); a '..' would
            # write outside the sandbox, so localmesos refuses it too, in the same words.
            if output.startswith("/") or ".." in output.split("/"):
                return "URI output file must be within the sandbox directory"
    return None


def _basename(uri: str) -> str:
    """Fetcher::basename: a URI's last path element, query and all (as Mesos has it)."""
    if any(c in uri for c in "\\'\0"):
        raise _Failed("Illegal characters in URI")
    index = uri.find("://")
    if index > 1:
        path = uri[index + 3 :]
        slash = path.find("/")
        if slash < 0 or len(path) <= slash + 1:
            raise _Failed(f"Malformed URI (missing path): {uri}")
        return path[path.rfind("/") + 1 :]
    return _path_basename(uri)


def _path_basename(path: str) -> str:
    """stout's Path::basename: trailing slashes do not count."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    return stripped[stripped.rfind("/") + 1 :]


def _local_path(uri: str, frameworks_home: str, prepended: Any = None) -> str | None:
    """Fetcher::uriToLocalPath: `file://`, or no scheme at all, is a local file."""
    file_uri = uri.startswith("file://")
    if not file_uri and "://" in uri:
        return None
    path = uri.removeprefix("file://").removeprefix("localhost")
    if path.startswith("/"):
        return path
    if file_uri:
        raise _Failed("File URI only supports absolute paths")
    if not frameworks_home:
        raise _Failed(
            "A relative path was passed for the resource but the Mesos framework home was not "
            "specified. Please either provide this config option or avoid using a relative path"
        )
    path = os.path.join(frameworks_home, path)
    if prepended is not None:
        prepended(path)
    return path


def _cache_filename(serial: int, value: str) -> str:
    """Cache::nextFilename: "c<serial>-" and the URI's basename, shortened, extension kept."""
    base = _basename(value)
    if len(base) > 20:
        base = f"{base[:10]}_{base[-10:]}"
    return f"c{serial}-{base}"


def _content_length(url: str, timeout: float) -> int:
    """stout's net::contentLength: a HEAD request, whose status code nobody reads."""
    if url.startswith(("ftp://", "ftps://")):
        raise _Failed("Unsupported protocol")
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method="HEAD"), timeout=timeout
        ) as response:
            length = response.headers.get("Content-Length", "")
    except urllib.error.HTTPError as error:
        length = error.headers.get("Content-Length", "")
    except (OSError, HTTPException, ValueError) as error:
        raise _Failed(_curl_message(error)) from None
    if not length.isdigit():
        raise _Failed("No URL content-length available")
    return int(length)


def _curl_message(error: BaseException) -> str:
    """What curl_easy_strerror says for the error urllib met (strings of libcurl 7.88)."""
    connecting = isinstance(error, urllib.error.URLError)  # urlopen wraps connection errors
    reason = error.reason if connecting else error
    if isinstance(reason, socket.gaierror):
        return "Couldn't resolve host name"
    if isinstance(reason, TimeoutError):
        return "Timeout was reached"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "SSL peer certificate or SSH remote key was not OK"
    if isinstance(reason, ssl.SSLError):
        return "SSL connect error"
    if isinstance(reason, RemoteDisconnected):
        return "Server returned nothing (no headers, no data)"
    if isinstance(reason, IncompleteRead):
        return "Transferred a partial file"
    if isinstance(reason, HTTPException):
        return "Weird server reply"
    if isinstance(reason, OSError):
        return (
            "Couldn't connect to server"
            if connecting
            else "Failure when receiving data from the peer"
        )
    return "URL using bad/illegal format or missing URL"


def _raw(returncode: int) -> int:
    """Popen's returncode as the wait(2) status that Mesos prints."""
    return returncode << 8 if returncode >= 0 else -returncode


def _how(status: int) -> str:
    """WSTRINGIFY, in src/common/status_utils.hpp."""
    if status & 0x7F == 0:
        return f"exited with status {status >> 8}"
    return f"terminated with signal {signal.strsignal(status & 0x7F)}"


# -- extraction: stout's archiver::extract, on libarchive ---------------------------------------

# libarchive's reading and decompression errors, as Python's modules raise them.
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError)
_FILTER_ERRORS = (tarfile.FilterError,) if hasattr(tarfile, "data_filter") else ()


def _unpack(archive: str, directory: str) -> None:
    """A tar (plain, gzip, bzip2, xz) or a zip, recognised by content as libarchive does. Mesos
    asks for ARCHIVE_EXTRACT_SECURE_NODOTDOT, so a '..' member fails in libarchive's words;
    localmesos also refuses links out of the sandbox and special files (`_check_member`, and
    tarfile's "data" filter where the Python has it: 3.11.4 and later)."""
    if zipfile.is_zipfile(archive):
        _unzip(archive, directory)
        return
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115
    except _READ_ERRORS:
        raise _Failed("Unrecognized archive format") from None
    options: dict[str, Any] = {"filter": "data"} if _FILTER_ERRORS else {}
    tar.chown = lambda *args, **kwargs: None  # type: ignore[method-assign]  # no ..._OWNER
    with tar:
        while True:
            try:
                member = tar.next()
            except _READ_ERRORS as error:
                raise _Failed(f"Failed to read archive header: {error}") from None
            if member is None:
                return
            _check_member(directory, member.name, member)
            member.name = member.name.lstrip("/")  # libarchive joins every name to the sandbox
            try:
                tar.extract(member, directory, **options)
            except _FILTER_ERRORS as error:
                raise _Failed(f"Failed to write archive header: {error}") from None
            except _READ_ERRORS as error:
                raise _Failed(f"Failed to read archive data block: {error}") from None


def _unzip(archive: str, directory: str) -> None:
    try:
        zip_file = zipfile.ZipFile(archive)
    except _READ_ERRORS:
        raise _Failed("Unrecognized archive format") from None
    with zip_file:
        for info in zip_file.infolist():
            # zipfile would quietly rewrite '..' and absolute names: check them first.
            _check_member(directory, info.filename, None)
            try:
                path = zip_file.extract(info, directory)  # a later duplicate wins, as in Mesos
            except _READ_ERRORS as error:
                raise _Failed(f"Failed to read archive data block: {error}") from None
            mode = info.external_attr >> 16 & 0o777
            if mode and not info.is_dir():
                os.chmod(path, mode & ~0o022)  # as tarfile's data filter: no group/other write


def _check_member(directory: str, name: str, member: tarfile.TarInfo | None) -> None:
    def refuse(why: str) -> _Failed:
        return _Failed(f"Failed to write archive header: {why}")

    if ".." in name.replace("\\", "/").split("/"):
        raise refuse("Path contains '..'")
    root = os.path.realpath(directory)
    path = os.path.join(root, name.lstrip("/"))
    target = os.path.realpath(path)
    if target != root and not target.startswith(root + os.sep):  # through an extracted link
        raise refuse(f"'{name}' would be extracted outside the sandbox")
    if member is not None and member.isdev():
        raise refuse(f"'{name}' is a special file")
    if member is not None and (member.issym() or member.islnk()):
        base = os.path.dirname(path) if member.issym() else root
        pointed = os.path.realpath(os.path.join(base, member.linkname))
        if os.path.isabs(member.linkname) or not pointed.startswith(root + os.sep):
            raise refuse(f"'{name}' would link to '{member.linkname}', outside the sandbox")
