"""The one guarded HTTP client: every server-side fetch of a user-supplied URL goes through it (DESIGN §11).

What it guarantees, and why:

- http and https only, no user name or password in the URL, host names as DNS names
  or canonical IP literals (`http://2130706433/` and `http://0177.0.0.1/` mean 127.0.0.1
  to some resolvers and are refused rather than guessed at).
- It resolves the host itself and refuses the URL if *any* address is not global
  (loopback, private, link-local such as 169.254.169.254, CGNAT, multicast, reserved,
  IPv6 ULA / link-local, and IPv4 addresses wrapped in IPv6), then connects to exactly
  the address it checked — a second DNS answer (rebinding) is never asked for. The
  Host header, TLS SNI and certificate check still use the host name.
- Redirects are followed here, at most FETCH_MAX_REDIRECTS, each hop checked like the
  first before anything connects to it. Proxy variables are ignored (http.client never
  reads them), and only identity encoding is asked for, so no compressed bomb arrives.
- Time: FETCH_TIMEOUT_SECONDS for connecting and for any silence while reading, and a
  watchdog that closes the socket at FETCH_DEADLINE_SECONDS for the whole fetch.
- Size: Content-Length above FETCH_MAX_BYTES is refused before reading; the body streams
  to a file and is refused (and the file removed) the moment it passes the cap.

FETCH_ALLOWED_NETWORKS lists networks reachable although not global: empty in
production, set by tests (a server on 127.0.0.1) and self-hosters.
"""

from apps.core.fetch.client import Fetched, ProgressCallback, fetch_to_file
from apps.core.fetch.targets import FetchError, FetchLimits, Target, address_refusal, check_url, target_of

__all__ = [
    "FetchError",
    "FetchLimits",
    "Fetched",
    "ProgressCallback",
    "Target",
    "address_refusal",
    "check_url",
    "fetch_to_file",
    "target_of",
]
