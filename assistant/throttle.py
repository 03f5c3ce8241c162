"""Login hardening for the web chat: failed logins throttled, and session routes closed to strangers.

Gradio's login route calls the auth function with the user name and password only, so the throttle is an
ASGI middleware around the served app (:class:`LoginGuard`): it reads the user name from the login form,
refuses an attempt that comes too soon after failures (429 with ``Retry-After``) before the password is
looked at, and learns from Gradio's answer (200 or 400) whether the attempt failed.

Failures are counted per key, and each key has its own growing delay and then a temporary lockout
(:class:`LoginThrottle`, limits in ``UISettings``):

- ``addr:<client address>``: one client trying many names or passwords;
- ``user:<name>``: many clients trying one name.

A successful login must not be slowed by someone else's failures, and under a reverse proxy or an office
NAT many people share one address. So a browser that has signed in as a user gets a device cookie (signed,
HttpOnly), and its attempts for that user are counted under their own key ``device:<name>:<id>`` instead
of the two shared ones: the real user's browser keeps logging in while someone else is locked out of the
same name or address. A first login from a new browser while its address or name is under attack waits like
everyone else there; that is the price of throttling per name at all.

Nothing here logs a password; failures are logged with the user name, the client address and the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEVICE_COOKIE = "mof-login-device"
MAX_LOGIN_BODY = 16_384  # a login form is a name and a password; anything larger is refused
MAX_KEYS = 10_000  # failure records kept; the oldest are forgotten first
LOGIN_PATHS = frozenset({"/login", "/login/"})
# Gradio's session routes that answer without a login of their own: cancelling or resetting someone's event.
SESSION_PATHS = frozenset(
    {"/gradio_api/cancel", "/gradio_api/cancel/", "/gradio_api/reset", "/gradio_api/reset/"}
)


@dataclass(frozen=True)
class ThrottleLimits:
    """How failures slow down further attempts of the same key."""

    free_failures: int = 3  # failures before any delay
    delay_s: float = 1.0  # the first delay, doubled with every further failure ...
    max_delay_s: float = 60.0  # ... up to this
    lockout_failures: int = 10  # this many failures lock the key ...
    lockout_s: float = 900.0  # ... for this long; a key with no failure for this long is forgotten

    @classmethod
    def from_ui(cls, ui: Any) -> ThrottleLimits:
        """The limits set in ``UISettings`` (``ASSISTANT_UI__LOGIN_*``)."""
        return cls(
            free_failures=ui.login_free_failures,
            delay_s=ui.login_delay_s,
            max_delay_s=ui.login_max_delay_s,
            lockout_failures=ui.login_lockout_failures,
            lockout_s=ui.login_lockout_s,
        )

    def wait_after(self, failures: int) -> float:
        """Seconds an attempt must wait after the last of ``failures`` failures (lockout included)."""
        if failures >= self.lockout_failures:
            return self.lockout_s
        if failures < self.free_failures or failures <= 0:
            return 0.0
        return min(self.max_delay_s, self.delay_s * 2 ** (failures - max(self.free_failures, 1)))


@dataclass
class _Record:
    failures: int
    last: float


class LoginThrottle:
    """Failure counts per key with a growing delay and a lockout; time comes from ``clock`` (tests inject it).

    Thread-safe. At most ``max_keys`` records are kept (least recently failed forgotten first), so a flood of
    made-up names or addresses cannot grow memory.
    """

    def __init__(
        self,
        limits: ThrottleLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limits = limits or ThrottleLimits()
        self.clock = clock
        self.max_keys = max(1, max_keys)
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last >= self.limits.lockout_s:
            del self._records[key]  # no failure for a lockout period: forgotten
            return None
        return record

    def retry_after(self, keys: list[str]) -> float:
        """Seconds before an attempt counted under ``keys`` may be checked (0: check it now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                record = self._live(key, now)
                if record is not None:
                    wait = max(wait, record.last + self.limits.wait_after(record.failures) - now)
        return max(0.0, wait)

    def failed(self, keys: list[str]) -> dict[str, int]:
        """Count a failed attempt under every key; returns each key's failure count."""
        now = self.clock()
        counts: dict[str, int] = {}
        with self._lock:
            for key in keys:
                record = self._live(key, now)
                if record is None:
                    record = self._records[key] = _Record(0, now)
                record.failures += 1
                record.last = now
                self._records.move_to_end(key)
                counts[key] = record.failures
            while len(self._records) > self.max_keys:
                self._records.popitem(last=False)
        return counts

    def succeeded(self, keys: list[str]) -> None:
        """Forget the failures of keys that belong to the client that just logged in."""
        with self._lock:
            for key in keys:
                self._records.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


class DeviceCookies:
    """Signed device ids: ``<id>.<hmac(secret, user, id)>``; the secret lives as long as the process."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, user: str, device: str) -> str:
        return hmac.new(self._secret, f"{user}\0{device}".encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, user: str) -> str:
        """A new cookie value for a browser that just signed in as ``user``."""
        device = secrets.token_hex(8)
        return f"{device}.{self._sign(user, device)}"

    def device_of(self, user: str, value: str | None) -> str | None:
        """The device id when ``value`` is a valid cookie for ``user``, else None."""
        device, _, signature = (value or "").partition(".")
        if not device or not signature or not hmac.compare_digest(signature, self._sign(user, device)):
            return None
        return device


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}


def _cookies(headers: Mapping[str, str]) -> dict[str, str]:
    from http.cookies import SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is no cookie
        return {}
    return {k: m.value for k, m in jar.items()}


def _route(scope: Scope) -> str:
    """The request path inside the app (without a root path that the server put in front)."""
    path = str(scope.get("path") or "")
    root = str(scope.get("root_path") or "")
    return (path[len(root) :] or "/") if root and path.startswith(root) else path


async def _respond(send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _form_username(body: bytes, headers: Mapping[str, str]) -> str:
    """The ``username`` field of a urlencoded or multipart login form ("" when absent), stripped as Gradio does."""
    content_type = headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        from starlette.requests import Request

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "headers": [(b"content-type", content_type.encode("latin-1"))],
        }
        try:
            form = await Request(scope, replay).form()
        except Exception:
            return ""
        value = form.get("username")
        return value.strip() if isinstance(value, str) else ""
    values = parse_qs(body.decode("utf-8", "replace")).get("username") or [""]
    return values[0].strip()


class LoginGuard:
    """ASGI middleware: throttles Gradio's ``/login`` and refuses its session routes to clients not logged in.

    ``session_user(scope)`` returns the user of the request's Gradio login cookie, or None.
    """

    def __init__(
        self,
        app: ASGIApp,
        throttle: LoginThrottle,
        session_user: Callable[[Scope], str | None],
        trust_forwarded_for: bool = False,
        devices: DeviceCookies | None = None,
    ) -> None:
        self.app = app
        self.throttle = throttle
        self.session_user = session_user
        self.trust_forwarded_for = trust_forwarded_for
        self.devices = devices or DeviceCookies()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        route = _route(scope)
        if route in SESSION_PATHS and self.session_user(scope) is None:
            await _respond(send, 401, "Not authenticated")
            return
        if route in LOGIN_PATHS and scope.get("method") == "POST":
            await self._login(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def client_address(self, scope: Scope, headers: Mapping[str, str]) -> str:
        """The peer address, or the proxy's last ``X-Forwarded-For`` entry when that is trusted."""
        if self.trust_forwarded_for:
            forwarded = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
            if forwarded:
                return forwarded[-1]
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        body = await _read_body(receive, MAX_LOGIN_BODY)
        if body is None:
            await _respond(send, 413, "Login form too large.")
            return
        user = await _form_username(body, headers)
        address = self.client_address(scope, headers)
        device = self.devices.device_of(user, _cookies(headers).get(DEVICE_COOKIE)) if user else None
        keys = [f"device:{user}:{device}"] if device else [f"addr:{address}", f"user:{user}"]
        wait = self.throttle.retry_after(keys)
        if wait > 0:
            seconds = math.ceil(wait)
            log.warning("login refused for %r from %s: throttled for %d s more", user, address, seconds)
            await _respond(
                send,
                429,
                f"Too many failed logins; try again in {seconds} s.",
                [(b"retry-after", str(seconds).encode())],
            )
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # after the body: the server's disconnect notice
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                if message["status"] == 200 and user:
                    self.throttle.succeeded(keys)
                    cookie = f"{DEVICE_COOKIE}={self.devices.issue(user)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000"
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())],
                    }
                elif message["status"] in (400, 401):
                    counts = self.throttle.failed(keys)
                    log.warning(
                        "failed login for %r from %s (%s)",
                        user,
                        address,
                        ", ".join(f"{k}: {n} failure(s)" for k, n in counts.items()),
                    )
            await send(message)

        await self.app(scope, replay, watch)


def session_user_of(gradio_app: Any) -> Callable[[Scope], str | None]:
    """``session_user`` for :class:`LoginGuard` from Gradio's mounted app (its login cookies and tokens)."""

    def user(scope: Scope) -> str | None:
        cookies = _cookies(_headers(scope))
        cookie_id = getattr(gradio_app, "cookie_id", None)
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        tokens = getattr(gradio_app, "tokens", None) or {}
        return tokens.get(token) if token else None

    return user


def install_login_guard(server_app: Any, gradio_app: Any, ui: Any) -> None:
    """Wrap ``server_app`` (FastAPI) in a :class:`LoginGuard` for Gradio's mounted app, when login is on."""
    if not ui.auth_enabled:
        return
    server_app.add_middleware(
        LoginGuard,
        throttle=LoginThrottle(ThrottleLimits.from_ui(ui)),
        session_user=session_user_of(gradio_app),
        trust_forwarded_for=ui.trust_forwarded_for,
    )
