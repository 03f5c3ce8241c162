"""Login hardening: throttled failed logins (delay, then lockout) and closed session routes, with fakes.

The guarded app is a fake of Gradio's routes (``/login`` answers 200 or 400 like Gradio's) and time is an
injected clock, so nothing sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs

import pytest
from starlette.testclient import TestClient

from assistant.settings import UISettings
from assistant.throttle import (
    DEVICE_COOKIE,
    LoginGuard,
    LoginThrottle,
    ThrottleLimits,
    install_login_guard,
    session_user_of,
)

USERS = {"alice": "correct horse", "bob": "battery staple"}
SECRET_GUESS = "hunter2-guess"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeGradio:
    """Gradio's login (200 + session cookie, or 400) and session routes, as an ASGI app."""

    cookie_id = "abc"

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.checked: list[str] = []  # user names whose password was checked

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, headers = 200, [(b"content-type", b"application/json")]
        if scope["path"].startswith("/login"):
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if "multipart" in dict(scope["headers"]).get(b"content-type", b"").decode():
                form = {"username": "alice", "password": USERS["alice"]}  # the guard parses it, not us
            user = form.get("username", "").strip()
            self.checked.append(user)
            if USERS.get(user) == form.get("password"):
                token = f"token-{len(self.tokens)}"
                self.tokens[token] = user
                headers.append((b"set-cookie", f"access-token-{self.cookie_id}={token}".encode()))
            else:
                status = 400
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


def guarded(limits: ThrottleLimits | None = None) -> tuple[TestClient, FakeGradio, Clock, LoginThrottle]:
    gradio, clock = FakeGradio(), Clock()
    throttle = LoginThrottle(limits or ThrottleLimits(), clock=clock)
    app = LoginGuard(gradio, throttle, session_user_of(gradio), trust_forwarded_for=True)
    return TestClient(app), gradio, clock, throttle


def login(client: TestClient, user: str, password: str, address: str = "10.0.0.1", **kwargs: Any) -> Any:
    return client.post(
        "/login",
        data={"username": user, "password": password},
        headers={"X-Forwarded-For": address},
        **kwargs,
    )


def test_failures_get_a_growing_delay_then_a_lockout() -> None:
    limits = ThrottleLimits(free_failures=3, delay_s=1, max_delay_s=8, lockout_failures=8, lockout_s=600)
    client, gradio, clock, throttle = guarded(limits)
    keys = ["addr:10.0.0.1", "user:alice"]
    waits = []
    for _ in range(8):
        assert login(client, "alice", SECRET_GUESS).status_code == 400
        waits.append(round(throttle.retry_after(keys)))
        if waits[-1]:
            clock.now += waits[-1] - 0.5
            # Not a moment earlier, even with the right password.
            refused = login(client, "alice", USERS["alice"])
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
            clock.now += 0.5
    assert waits == [0, 0, 1, 2, 4, 8, 8, 600], (
        "free failures, a doubling delay up to its cap, then a lockout"
    )
    assert gradio.checked == ["alice"] * 8, "a refused attempt never reaches the password check"
    assert login(client, "alice", USERS["alice"]).status_code == 200, "the lockout is temporary"


def test_each_key_is_throttled_per_address_and_per_user_name() -> None:
    client, _, clock, _ = guarded(ThrottleLimits(free_failures=1, delay_s=30))
    # One address trying several names is slowed on every name, ...
    assert login(client, "alice", SECRET_GUESS, "10.0.0.66").status_code == 400
    assert login(client, "bob", SECRET_GUESS, "10.0.0.66").status_code == 429
    # ... and many addresses trying one name are slowed on that name.
    assert login(client, "carol", SECRET_GUESS, "10.0.0.7").status_code == 400
    assert login(client, "carol", SECRET_GUESS, "10.0.0.8").status_code == 429
    # Someone else, elsewhere, logs in at once.
    assert login(client, "bob", USERS["bob"], "10.0.0.9").status_code == 200
    clock.now += 30
    assert login(client, "bob", USERS["bob"], "10.0.0.66").status_code == 200


def test_a_browser_that_signed_in_before_is_not_slowed_by_someone_elses_failures() -> None:
    # Everyone comes through one proxy address: an attacker locks out alice's name and the address, yet
    # alice's own browser, which signed in before, logs in at once.
    client, _, _, _ = guarded(ThrottleLimits(lockout_failures=5, lockout_s=900))
    first = login(client, "alice", USERS["alice"], "10.9.9.9")
    assert first.status_code == 200
    device = first.cookies[DEVICE_COOKIE]
    attacker = TestClient(client.app)
    statuses = [login(attacker, "alice", SECRET_GUESS, "10.9.9.9").status_code for _ in range(12)]
    assert statuses.count(400) == 3 and statuses[-1] == 429
    alice = TestClient(client.app, cookies={DEVICE_COOKIE: device})
    assert login(alice, "alice", USERS["alice"], "10.9.9.9").status_code == 200
    # The cookie is alice's: it does not let anyone past the throttle under another name.
    mallory = TestClient(client.app, cookies={DEVICE_COOKIE: device})
    assert login(mallory, "bob", SECRET_GUESS, "10.9.9.9").status_code == 429


def test_a_forged_device_cookie_is_ignored() -> None:
    client, _, _, _ = guarded(ThrottleLimits(free_failures=1, delay_s=60))
    assert login(client, "alice", SECRET_GUESS, "10.1.1.1").status_code == 400
    forged = TestClient(client.app, cookies={DEVICE_COOKIE: "0123456789abcdef.0000"})
    assert login(forged, "alice", SECRET_GUESS, "10.1.1.1").status_code == 429


def test_failures_are_logged_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    client, _, _, _ = guarded(ThrottleLimits(free_failures=1, delay_s=5))
    with caplog.at_level(logging.INFO, logger="assistant.throttle"):
        login(client, "alice", SECRET_GUESS, "10.2.2.2")
        login(client, "alice", SECRET_GUESS, "10.2.2.2")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed login for 'alice' from 10.2.2.2" in text and "throttled" in text
    assert SECRET_GUESS not in text


def test_multipart_login_forms_are_read() -> None:
    client, gradio, _, _ = guarded()
    response = client.post("/login", files={"username": (None, "alice"), "password": (None, USERS["alice"])})
    assert response.status_code == 200 and DEVICE_COOKIE in response.cookies
    assert gradio.checked == ["alice"]


def test_an_oversized_login_form_is_refused() -> None:
    client, gradio, _, _ = guarded()
    assert login(client, "alice", "x" * 20_000).status_code == 413
    assert gradio.checked == []


def test_session_routes_need_a_login() -> None:
    client, _, _, _ = guarded()
    body = {"session_hash": "s", "fn_index": 0, "event_id": "e"}
    for path in ("/gradio_api/cancel", "/gradio_api/reset", "/gradio_api/reset/"):
        assert client.post(path, json=body).status_code == 401, path
    assert login(client, "bob", USERS["bob"]).status_code == 200  # the session cookie is kept by the client
    assert client.post("/gradio_api/cancel", json=body).status_code == 200
    assert client.get("/gradio_api/info").status_code == 200, "other routes are left to Gradio's own checks"


def test_failure_records_are_bounded() -> None:
    clock = Clock()
    throttle = LoginThrottle(ThrottleLimits(), clock=clock, max_keys=50)
    for i in range(500):
        throttle.failed([f"user:made-up-{i}"])
    assert len(throttle) == 50
    clock.now += ThrottleLimits().lockout_s
    assert throttle.retry_after(["user:made-up-499"]) == 0.0


def test_guard_is_installed_only_with_login_on() -> None:
    from fastapi import FastAPI

    off, on = FastAPI(), FastAPI()
    install_login_guard(off, FakeGradio(), UISettings(auth_enabled=False))
    install_login_guard(on, FakeGradio(), UISettings(auth_enabled=True, login_lockout_failures=4))
    assert off.user_middleware == []
    assert [m.cls for m in on.user_middleware] == [LoginGuard]
    throttle = on.user_middleware[0].kwargs["throttle"]
    assert isinstance(throttle, LoginThrottle) and throttle.limits.lockout_failures == 4


def test_guard_works_with_gradios_real_login_and_session_routes() -> None:
    import gradio as gr
    from fastapi import FastAPI

    with gr.Blocks() as demo:
        gr.Markdown("MOF")
    server = FastAPI()
    gr.mount_gradio_app(server, demo, path="/", auth=lambda u, p: (u, p) == ("alice", USERS["alice"]))
    mounted = server.routes[-1].app  # type: ignore[attr-defined]
    install_login_guard(server, mounted, UISettings(auth_enabled=True, login_free_failures=1))
    body = {"session_hash": "s", "fn_index": 0, "event_id": "e"}
    stranger, alice = TestClient(server), TestClient(server)
    assert stranger.post("/gradio_api/cancel", json=body).status_code == 401
    assert stranger.post("/gradio_api/reset", json=body).status_code == 401
    assert alice.post("/login", data={"username": "alice", "password": USERS["alice"]}).status_code == 200
    assert alice.post("/gradio_api/reset", json=body).status_code == 200
    assert stranger.post("/login", data={"username": "alice", "password": SECRET_GUESS}).status_code == 400
    assert stranger.post("/login", data={"username": "alice", "password": SECRET_GUESS}).status_code == 429
    # alice's browser signed in before: the stranger's failures (same test address) do not slow it.
    assert alice.post("/login", data={"username": "alice", "password": USERS["alice"]}).status_code == 200
