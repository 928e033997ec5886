"""The guarded HTTP client against real local servers: what it fetches, and everything it refuses."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from apps.core.fetch import FetchError, FetchLimits, address_refusal, check_url, fetch_to_file
from tests import http_servers
from tests.http_servers import local_server

LOOPBACK_V4 = (ipaddress.ip_network("127.0.0.1/32"),)
DATA = b'{"type": "FeatureCollection", "features": []}' * 100


def limits(
    *, allowed: tuple = LOOPBACK_V4, max_bytes: int = 10**6, timeout: float = 5, deadline: float = 30
) -> FetchLimits:
    return FetchLimits(
        max_bytes=max_bytes, timeout=timeout, deadline=deadline, max_redirects=5, allowed_networks=allowed
    )


def refusal(url: str, destination: Path, **limit_options: object) -> str:
    with pytest.raises(FetchError) as caught:
        fetch_to_file(url, destination, limits=limits(**limit_options))  # type: ignore[arg-type]
    assert not destination.exists()
    return caught.value.message


def test_a_file_streams_to_disk_with_its_type_and_name(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/data"] = http_servers.body(
            DATA, content_type="application/geo+json; charset=utf-8", disposition='attachment; filename="parks.geojson"'
        )
        fetched = fetch_to_file(server.url("/data?v=1"), tmp_path / "out", limits=limits())
    assert (tmp_path / "out").read_bytes() == DATA and fetched.size == len(DATA)
    assert fetched.content_type == "application/geo+json" and fetched.filename == "parks.geojson"
    assert server.requests[0].path == "/data?v=1"
    assert server.requests[0].headers["Host"] == f"127.0.0.1:{server.port}"
    assert server.requests[0].headers["Accept-Encoding"] == "identity"


def test_progress_reports_bytes_against_the_content_length(tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    with local_server() as server:
        server.routes["/big"] = http_servers.body(b"x" * 600_000)
        fetch_to_file(server.url("/big"), tmp_path / "out", limits=limits(), on_progress=lambda *a: seen.append(a))
    assert seen[-1] == (600_000, 600_000) and all(total == 600_000 for _, total in seen)


def test_a_content_length_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/huge"] = http_servers.lying_length(50 * 1024**3)
        message = refusal(server.url("/huge"), tmp_path / "out", max_bytes=100_000)
    assert message == "refused: the file is larger than the 100000 bytes a download may have."


def test_a_chunked_body_growing_past_the_cap_is_refused_and_removed(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/stream"] = http_servers.body(b"x" * 300_000, length=False)
        message = refusal(server.url("/stream"), tmp_path / "out", max_bytes=100_000)
    assert "larger than the 100000 bytes" in message


def test_a_body_cut_short_of_its_content_length_is_refused(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/short"] = http_servers.lying_length(5000)
        message = refusal(server.url("/short"), tmp_path / "out")
    assert message == "127.0.0.1 closed the connection after 1024 of 5000 bytes."


def test_a_silent_server_times_out(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/hang"] = http_servers.silent(10)
        started = time.monotonic()
        message = refusal(server.url("/hang"), tmp_path / "out", timeout=0.5)
    assert message == "127.0.0.1 sent nothing for 0.5 s." and time.monotonic() - started < 5


def test_a_server_trickling_bytes_is_stopped_at_the_total_deadline(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/trickle"] = http_servers.trickle(pause=0.1, pieces=200)
        started = time.monotonic()
        message = refusal(server.url("/trickle"), tmp_path / "out", timeout=1, deadline=1.5)
    assert message == "The download took longer than its 1.5 s limit." and time.monotonic() - started < 5


def test_an_error_status_is_reported(tmp_path: Path) -> None:
    with local_server() as server:
        assert refusal(server.url("/missing"), tmp_path / "out") == "127.0.0.1 answered 404 Not Found."


def test_redirects_are_followed_between_allowed_hosts(tmp_path: Path) -> None:
    with local_server() as first, local_server("127.0.0.2") as second:
        second.routes["/data"] = http_servers.body(DATA)
        first.routes["/go"] = http_servers.redirect(second.url("/data"), status=301)
        loopback = (ipaddress.ip_network("127.0.0.0/8"),)
        fetched = fetch_to_file(first.url("/go"), tmp_path / "out", limits=limits(allowed=loopback))
    assert fetched.url == second.url("/data") and (tmp_path / "out").read_bytes() == DATA


def test_a_redirect_to_a_refused_address_is_refused_without_connecting(tmp_path: Path) -> None:
    with local_server() as first, local_server("127.0.0.2") as second:
        second.routes["/secret"] = http_servers.body(b"internal")
        first.routes["/go"] = http_servers.redirect(second.url("/secret"))
        message = refusal(first.url("/go"), tmp_path / "out")
    assert message == "refused: 127.0.0.2 is a loopback address (in a redirect from 127.0.0.1)."
    assert second.requests == []


def test_a_redirect_to_the_metadata_service_is_refused(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/go"] = http_servers.redirect("http://169.254.169.254/latest/meta-data/")
        message = refusal(server.url("/go"), tmp_path / "out")
    assert message == "refused: 169.254.169.254 is a link-local address (in a redirect from 127.0.0.1)."


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO"])
def test_a_redirect_to_another_scheme_is_refused(tmp_path: Path, location: str) -> None:
    with local_server() as server:
        server.routes["/go"] = http_servers.redirect(location)
        message = refusal(server.url("/go"), tmp_path / "out")
    assert message.startswith("Only http and https URLs can be fetched") and "in a redirect" in message


def test_a_redirect_loop_stops_after_the_limit(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/loop"] = http_servers.redirect("/loop")
        message = refusal(server.url("/loop"), tmp_path / "out")
    assert message == "The URL redirected more than 5 times." and len(server.requests) == 6


def test_a_host_name_resolving_to_loopback_is_refused_unless_allow_listed(tmp_path: Path) -> None:
    with local_server() as server:
        server.routes["/data"] = http_servers.body(DATA)
        message = refusal(server.url("/data", host="localhost"), tmp_path / "out", allowed=())
    assert message.startswith("refused: localhost resolves to ") and message.endswith(", a loopback address.")
    assert server.requests == []


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/a.zip", "gopher://example.com/", "data:text/plain,hello", "//x.org/"],
)
def test_only_http_and_https_are_fetched(tmp_path: Path, url: str) -> None:
    assert refusal(url, tmp_path / "out").startswith("Only http and https URLs can be fetched")


def test_user_info_in_the_url_is_refused(tmp_path: Path) -> None:
    with local_server() as server:
        message = refusal(f"http://user:secret@127.0.0.1:{server.port}/", tmp_path / "out")
    assert message == "URLs with a user name or password are not accepted." and server.requests == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [("[::1]", "::1 is a loopback address"), ("[::ffff:127.0.0.1]", "a loopback address")],
)
def test_ipv6_loopback_literals_are_refused(tmp_path: Path, host: str, reason: str) -> None:
    assert reason in refusal(f"http://{host}:8000/", tmp_path / "out")


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "0x7f000001"])
def test_integer_octal_and_hex_addresses_are_refused_even_where_loopback_is_allowed(tmp_path: Path, host: str) -> None:
    with local_server() as server:
        server.routes["/"] = http_servers.body(DATA)
        message = refusal(
            f"http://{host}:{server.port}/", tmp_path / "out", allowed=(ipaddress.ip_network("127.0.0.0/8"),)
        )
    assert message.startswith(f"refused: {host} is not a canonical IP address") and server.requests == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("172.16.3.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("224.0.0.251", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 (classified, never bound)
        ("240.0.0.1", "a reserved address"),
        ("192.0.2.10", "a special-purpose address"),
        ("fd12:3456::1", "a private address"),
        ("fe80::1", "a link-local address"),
        ("ff02::1", "a multicast address"),
        ("::", "an unspecified address"),
        ("::ffff:10.0.0.5", "an IPv6 form of 10.0.0.5, a private address"),
        ("64:ff9b::a9fe:a9fe", "an IPv6 form of 169.254.169.254, a link-local address"),
        ("2002:7f00:1::", "an IPv6 form of 127.0.0.1, a loopback address"),
    ],
)
def test_non_global_addresses_are_named(address: str, kind: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_global_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_the_request_time_check_refuses_private_literals_and_unresolvable_hosts() -> None:
    with pytest.raises(FetchError, match=r"^refused: 10\.0\.0\.5 is a private address\.$"):
        check_url("http://10.0.0.5/data.geojson", limits=limits(allowed=()))
    with pytest.raises(FetchError, match=r"^The host no-such-host\.invalid does not resolve\.$"):
        check_url("https://no-such-host.invalid/x.geojson", limits=limits())


def test_proxy_variables_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with local_server() as target, local_server() as proxy:
        target.routes["/data"] = http_servers.body(DATA)
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url("/"))
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        fetch_to_file(target.url("/data"), tmp_path / "out", limits=limits())
    assert len(target.requests) == 1 and proxy.requests == []


# --- TLS: connect to the checked address, verify the certificate for the host name -------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost made by the openssl command line."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(  # noqa: S603 (fixed arguments)
        ["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _tls_server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_https_pins_the_address_but_sends_the_host_name_for_sni_and_host(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    loopback = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
    with local_server(tls=_tls_server_context(certificate)) as server:
        server.routes["/data"] = http_servers.body(DATA)
        url = server.url("/data", host="localhost")
        fetched = fetch_to_file(url, tmp_path / "out", limits=limits(allowed=loopback), ssl_context=trusting)
    assert fetched.size == len(DATA) and server.server_names == ["localhost"]
    assert server.requests[0].headers["Host"] == f"localhost:{server.port}"


def test_https_with_an_untrusted_certificate_is_refused(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    loopback = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
    with local_server(tls=_tls_server_context(certificate)) as server:
        server.routes["/data"] = http_servers.body(DATA)
        message = refusal(server.url("/data", host="localhost"), tmp_path / "out", allowed=loopback)
    assert message.startswith("The TLS connection to localhost failed (CERTIFICATE_VERIFY_FAILED")
    assert server.requests == []
