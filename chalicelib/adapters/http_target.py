"""Posting a signed webhook to a receiver: resolve, check every address, connect to a checked one.

The host is resolved here and each address is checked (``domain.addresses.check_address``) before
connecting, and the connection goes to the address that was checked, so a name that resolves to a
metadata or private address, or changes between the check and the request, is never reached.
Redirects are not followed. One attempt has 10 s in all.
"""

from __future__ import annotations

import socket

import urllib3

from chalicelib.domain.addresses import check_address
from chalicelib.domain.errors import Invalid
from chalicelib.domain.webhooks import DELIVERY_TIMEOUT_SECONDS, check_url


class HttpPoster:
    def __init__(self, allow_private: bool, timeout: float = DELIVERY_TIMEOUT_SECONDS) -> None:
        self._allow_private = allow_private
        self._timeout = timeout

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
        """(HTTP status, '') or (None, why it was not delivered)."""
        try:
            target = check_url(url, self._allow_private)
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            for address in addresses:
                check_address(address, self._allow_private)
        except Invalid as exc:
            return None, exc.message
        except OSError as exc:
            return None, f"could not resolve the host: {exc.strerror or exc}"
        if not addresses:
            return None, "the host has no address"
        timeout = urllib3.Timeout(total=self._timeout)
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                addresses[0],
                target.port,
                timeout=timeout,
                retries=False,
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(addresses[0], target.port, timeout=timeout, retries=False)
        try:
            # Only the status matters: the answer's body is never read (a receiver cannot make it cost).
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": target.authority},
                redirect=False,
                preload_content=False,
            )
            return response.status, ""
        except urllib3.exceptions.HTTPError as exc:
            return None, f"no answer: {type(exc).__name__}"
        finally:
            pool.close()
