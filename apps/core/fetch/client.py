"""The guarded client's connections: pinned to checked addresses, redirect-checked, time- and size-capped."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import urljoin

from apps.core.fetch.targets import FetchError, FetchLimits, IPAddress, Target, checked_addresses, target_of

ProgressCallback = Callable[[int, int | None], None]  # (bytes received, Content-Length or None)
CHUNK_BYTES = 256 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Fetched:
    path: Path
    size: int
    url: str  # after redirects
    content_type: str
    filename: str  # from Content-Disposition; "" when none was sent


class _Deadline:
    """The whole fetch's time budget; at its end a timer shuts the open socket, unblocking any read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            self.expired = True
            raise self.error()
        return left

    def error(self) -> FetchError:
        return FetchError(f"The download took longer than its {self.seconds:g} s limit.")

    def watch(self, sock: socket.socket) -> None:
        self.cancel()
        self._timer = threading.Timer(self.remaining(), self._expire, args=(sock,))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self, sock: socket.socket) -> None:
        self.expired = True
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain fd, also under an SSLSocket


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address we checked; the Host header still names the host."""

    def __init__(self, target: Target, address: IPAddress, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the address we checked; SNI and the certificate check use the host name."""

    def __init__(self, target: Target, address: IPAddress, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self.address = address
        self.tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((str(self.address), self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)


def _connect(
    target: Target, addresses: list[IPAddress], limits: FetchLimits, deadline: _Deadline,
    context: ssl.SSLContext | None,
) -> http.client.HTTPConnection:  # fmt: skip
    """Try the checked addresses in order (an IPv6 answer may be unreachable from here)."""
    failures = []
    for address in addresses:
        timeout = min(limits.timeout, deadline.remaining())
        if target.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPSConnection(
                target, address, timeout, context or ssl.create_default_context()
            )
        else:
            conn = _PinnedHTTPConnection(target, address, timeout)
        try:
            conn.connect()
            return conn
        except ssl.SSLError as exc:
            raise FetchError(f"The TLS connection to {target.host} failed ({exc.reason or exc}).") from None
        except OSError as exc:
            failures.append(f"{address}: {exc.strerror or exc}")
    raise FetchError(f"Could not connect to {target.host} port {target.port} ({'; '.join(failures)}).")


def _addresses(target: Target, limits: FetchLimits, deadline: _Deadline) -> list[IPAddress]:
    return checked_addresses(target, limits, timeout=min(limits.timeout, deadline.remaining()))


def _request(
    target: Target, addresses: list[IPAddress], limits: FetchLimits, deadline: _Deadline,
    context: ssl.SSLContext | None,
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:  # fmt: skip
    conn = _connect(target, addresses, limits, deadline, context)
    deadline.watch(conn.sock)
    try:
        conn.request("GET", target.path, headers={"Accept": "*/*", "User-Agent": "Meridian", "Connection": "close"})
        return conn, conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise _read_error(target, limits, deadline, exc) from None


def _read_error(target: Target, limits: FetchLimits, deadline: _Deadline, exc: Exception) -> FetchError:
    if deadline.expired:
        return deadline.error()
    if isinstance(exc, TimeoutError):
        return FetchError(f"{target.host} sent nothing for {limits.timeout:g} s.")
    return FetchError(f"The download from {target.host} failed ({exc or type(exc).__name__}).")


def fetch_to_file(
    url: str,
    destination: Path,
    *,
    limits: FetchLimits | None = None,
    on_progress: ProgressCallback | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Fetched:
    """GET `url` into `destination` through every guard above; raise FetchError saying why not.

    `destination` exists afterwards only when the fetch succeeded. `ssl_context` is for
    tests that trust their own certificate; callers leave it to the system's trust store.
    """
    limits = limits or FetchLimits.from_settings()
    deadline = _Deadline(limits.deadline)
    target = target_of(url)
    addresses = _addresses(target, limits, deadline)
    try:
        for _hop in range(limits.max_redirects + 1):
            conn, response = _request(target, addresses, limits, deadline, ssl_context)
            try:
                location = response.getheader("Location")
                if response.status not in REDIRECT_STATUSES or not location:
                    return _save(target, response, destination, limits, deadline, on_progress)
            finally:
                conn.close()
            target, addresses = _redirected(target, location, limits, deadline)
        raise FetchError(f"The URL redirected more than {limits.max_redirects} times.")
    finally:
        deadline.cancel()


def _redirected(
    target: Target, location: str, limits: FetchLimits, deadline: _Deadline
) -> tuple[Target, list[IPAddress]]:
    """The next hop, checked like the first one before anything connects to it."""
    try:
        following = target_of(urljoin(target.url, location))
        return following, _addresses(following, limits, deadline)
    except FetchError as exc:
        raise FetchError(f"{exc.message.removesuffix('.')} (in a redirect from {target.host}).") from None


def _save(
    target: Target, response: http.client.HTTPResponse, destination: Path, limits: FetchLimits,
    deadline: _Deadline, on_progress: ProgressCallback | None,
) -> Fetched:  # fmt: skip
    if response.status != 200:
        raise FetchError(f"{target.host} answered {response.status} {response.reason}.")
    length = _content_length(response, target, limits)
    try:
        size = _stream(response, destination, limits, length, on_progress)
    except BaseException as exc:  # a cap, a timeout, or the caller's progress callback stopping us
        destination.unlink(missing_ok=True)
        if isinstance(exc, OSError | http.client.HTTPException):
            raise _read_error(target, limits, deadline, exc) from None
        raise
    if deadline.expired or (length is not None and size != length):
        destination.unlink(missing_ok=True)
        raise (
            deadline.error()
            if deadline.expired
            else FetchError(f"{target.host} closed the connection after {size} of {length} bytes.")
        )
    return Fetched(
        path=destination, size=size, url=target.url,
        content_type=(response.getheader("Content-Type") or "").split(";")[0].strip().lower(),
        filename=_disposition_filename(response.getheader("Content-Disposition") or ""),
    )  # fmt: skip


def _too_large(limits: FetchLimits) -> FetchError:
    return FetchError(f"refused: the file is larger than the {limits.max_bytes} bytes a download may have.")


def _content_length(response: http.client.HTTPResponse, target: Target, limits: FetchLimits) -> int | None:
    header = response.getheader("Content-Length")
    if header is None or response.chunked:
        return None
    if not header.strip().isdigit():
        raise FetchError(f"{target.host} sent an invalid Content-Length ({header[:40]!r}).")
    if int(header) > limits.max_bytes:
        raise _too_large(limits)
    return int(header)


def _stream(
    response: http.client.HTTPResponse, destination: Path, limits: FetchLimits, length: int | None,
    on_progress: ProgressCallback | None,
) -> int:  # fmt: skip
    """Copy the body to disk chunk by chunk (read1: one recv at most, so the idle timeout holds)."""
    size = 0
    with destination.open("wb") as file:
        while chunk := response.read1(CHUNK_BYTES):
            size += len(chunk)
            if size > limits.max_bytes:
                raise _too_large(limits)
            file.write(chunk)
            if on_progress is not None:
                on_progress(size, length)
    return size


def _disposition_filename(header: str) -> str:
    if not header:
        return ""
    message = Message()
    message["Content-Disposition"] = header
    name = message.get_filename() or ""
    return name.replace("\\", "/").rsplit("/", 1)[-1][:255]
