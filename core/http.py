"""HTTP client settings shared by every outbound client that serves more than one tenant."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy


def cookieless_jar() -> CookieJar:
    """A cookie jar that stores nothing (``DefaultCookiePolicy`` with no allowed domain), for
    ``httpx.AsyncClient(cookies=...)``. One client serves every tenant's inbox and alert webhooks; a
    cookie one tenant's server set (for example a WAHA session cookie) would otherwise be sent with
    the next tenant's request to the same host."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
