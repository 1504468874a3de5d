"""Talking to a partner's TAXII 2.1 server with taxii2-client: auth, discovery, retries, errors.

Every request goes through :func:`retrying`: connection errors, timeouts, 429
and 5xx are retried with exponential back-off (tenacity); 401, 403 and 404
are :class:`PermanentFeedError` and stop the feed; anything else is a
:class:`FeedError` recorded on the feed, which is tried again at its next turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from taxii2client.common import _HTTPConnection
from taxii2client.exceptions import AccessError, TAXIIServiceException, ValidationError
from taxii2client.v21 import ApiRoot, Collection
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from app.config.settings import Settings

T = TypeVar("T")
PERMANENT_STATUSES = frozenset({401, 403, 404})
TAXII_ACCEPT = "application/taxii+json;version=2.1"


class FeedError(RuntimeError):
    """A feed run failed; the message is safe to record and show (it never holds a credential)."""


class PermanentFeedError(FeedError):
    """The partner refused us (401/403/404) or the feed cannot work as configured: stop the feed."""


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>`` (taxii2-client's TokenAuth sends the ``Token`` scheme)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Put the bearer token in ``request``'s Authorization header."""
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout: taxii2-client sets none, and a silent peer must not hang a feed."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def send(  # type: ignore[override]  # requests passes its options by keyword; they are forwarded as given
        self, request: PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)


def is_transient(exc: BaseException) -> bool:
    """Connection problems, timeouts, 429 and 5xx: worth another try."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return False


def describe(exc: BaseException) -> FeedError:
    """Turn a client exception into a FeedError (permanent for 401/403/404)."""
    if isinstance(exc, FeedError):
        return exc
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        message = f"HTTP {status} from {exc.response.url}"
        return PermanentFeedError(message) if status in PERMANENT_STATUSES else FeedError(message)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return FeedError(f"cannot reach the partner: {exc.__class__.__name__}")
    if isinstance(exc, AccessError):
        return PermanentFeedError(f"the partner's collection refuses this feed: {exc}")
    if isinstance(exc, (TAXIIServiceException, ValidationError, ValueError)):
        return FeedError(f"the partner's answer is not valid TAXII 2.1: {exc}")
    return FeedError(f"{exc.__class__.__name__}: {exc}")


@dataclass
class Remote:
    """One partner endpoint: its API root, the feed's collection, and the last response's headers."""

    connection: _HTTPConnection
    api_root: ApiRoot
    collection: Collection
    settings: Settings
    last_headers: CaseInsensitiveDict[str] = field(default_factory=CaseInsensitiveDict)

    def retrying(self, function: Callable[..., T]) -> Callable[..., T]:
        """``function`` with transient errors retried (tenacity, exponential back-off)."""
        return retrying(self.settings, function)

    def close(self) -> None:
        """Close the connection to the partner."""
        self.connection.close()


def retrying(settings: Settings, function: Callable[..., T]) -> Callable[..., T]:
    """Wrap ``function`` so transient errors are retried and the last one is raised as a FeedError."""

    def call(*args: Any, **kwargs: Any) -> T:
        retryer = Retrying(
            stop=stop_after_attempt(settings.feed_retry_attempts),
            wait=wait_exponential(multiplier=settings.feed_retry_initial_s, max=settings.feed_retry_max_s),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        try:
            return retryer(function, *args, **kwargs)
        except Exception as exc:  # every failure of a remote call is reported as a FeedError
            raise describe(exc) from exc

    return call


def _auth(auth_kind: str, username: str | None, secret: str | None) -> requests.auth.AuthBase | None:
    if auth_kind == "basic":
        return requests.auth.HTTPBasicAuth(username or "", secret or "")
    if auth_kind == "bearer":
        return BearerAuth(secret or "")
    return None


def connect(
    settings: Settings, *, url: str, collection_id: str, auth_kind: str, username: str | None, secret: str | None
) -> Remote:
    """Open the partner's collection; ``url`` may be the discovery URL or an API root URL."""
    auth = _auth(auth_kind, username, secret)
    connection = _HTTPConnection(auth=auth, version="2.1") if auth else _HTTPConnection(version="2.1")
    adapter = _TimeoutAdapter(settings.feed_timeout_s)
    connection.session.mount("http://", adapter)
    connection.session.mount("https://", adapter)
    remote_headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()  # servers differ in header case

    def keep_headers(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        remote_headers.clear()
        remote_headers.update(response.headers)

    connection.session.hooks["response"].append(keep_headers)
    get = retrying(settings, connection.get)
    base = url if url.endswith("/") else url + "/"
    try:
        document = get(base, headers={"Accept": TAXII_ACCEPT})
        if not isinstance(document, dict):
            raise FeedError(f"{base} answered with something that is not a TAXII resource")
        if "api_roots" in document or "max_content_length" not in document:
            roots = document.get("api_roots") or []
            root_url = document.get("default") or (roots[0] if roots else None)
            if not isinstance(root_url, str) or not root_url:
                raise PermanentFeedError(f"the discovery resource at {base} names no API root")
            # OpenTAXII names its API roots by path ("/taxii2/<id>/"): resolve them against the discovery URL.
            root_url = urljoin(base, root_url)
            base = root_url if root_url.endswith("/") else root_url + "/"
        api_root = ApiRoot(base, conn=connection)
        retrying(settings, api_root.refresh_information)()
        collection = Collection(f"{base}collections/{collection_id}/", conn=connection)
        retrying(settings, collection.refresh)()
    except Exception as exc:
        connection.close()
        raise describe(exc) from exc
    remote = Remote(connection, api_root, collection, settings)
    remote.last_headers = remote_headers  # the hook updates this very dict
    return remote


__all__ = ["BearerAuth", "FeedError", "PermanentFeedError", "Remote", "connect", "describe", "is_transient", "retrying"]
