"""The console's door (app/door.py) in front of a small ASGI app, through Starlette's test client: with a token
only the login cookie or the bearer token pass, pages send a browser to the form and back, API calls get
401, websockets are closed, a wrong token says so, the form never sends you to another site. The real apps
behind it, from another network namespace, are in tests/e2e/test_doors.py."""
from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app import door


async def _page(request):
    return PlainTextResponse("secret page " + request.url.path)


async def _ws(websocket):
    await websocket.accept()
    await websocket.send_text("secret stream")
    await websocket.close()


def _client() -> TestClient:
    app = Starlette(routes=[Route("/{p:path}", _page, methods=["GET", "POST"]), WebSocketRoute("/_stcore/stream", _ws)],
                    middleware=[Middleware(door.Door)])
    return TestClient(app, base_url="http://console.example:8501", follow_redirects=False)


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("SQLGENIE_TOKEN", "s3cret-token")
    monkeypatch.setattr(door, "WRONG_WAIT_S", 0.0)
    return "s3cret-token"


HTML = {"accept": "text/html,application/xhtml+xml"}


def test_without_a_token_the_door_stands_open(monkeypatch):
    monkeypatch.delenv("SQLGENIE_TOKEN", raising=False)
    c = _client()
    assert c.get("/jobs").text == "secret page /jobs"
    with c.websocket_connect("/_stcore/stream") as ws:
        assert ws.receive_text() == "secret stream"


def test_a_page_sends_a_browser_to_the_form_and_back_after_the_token(token):
    c = _client()
    r = c.get("/jobs?job=1", headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == "/_door/login?next=%2Fjobs%3Fjob%3D1"
    assert "secret" not in r.text
    form = c.get(r.headers["location"])
    assert form.status_code == 200 and 'name="token"' in form.text and 'value="/jobs?job=1"' in form.text
    wrong = c.post(door.LOGIN, data={"token": "nope", "next": "/jobs?job=1"})
    assert wrong.status_code == 401 and door.WRONG in wrong.text.replace("&#x27;", "'")
    assert "set-cookie" not in wrong.headers
    ok = c.post(door.LOGIN, data={"token": token, "next": "/jobs?job=1"})
    assert ok.status_code == 303 and ok.headers["location"] == "/jobs?job=1"
    assert "HttpOnly" in ok.headers["set-cookie"] and token not in ok.headers["set-cookie"]
    assert c.get("/jobs?job=1").text == "secret page /jobs"          # the cookie now opens every URL
    cookie = f"{door.COOKIE}={c.cookies[door.COOKIE]}"              # (the test client's websockets send no jar)
    with c.websocket_connect("/_stcore/stream", headers={"cookie": cookie}) as ws:
        assert ws.receive_text() == "secret stream"
    out = c.get(door.LOGOUT)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    assert c.get("/jobs", headers=HTML).status_code == 303


def test_api_calls_and_websockets_without_the_token_are_refused(token):
    c = _client()
    for method, path in (("GET", "/config"), ("POST", "/gradio_api/queue/join"), ("GET", "/_stcore/health"),
                         ("POST", "/_door/loginx")):
        r = c.request(method, path)
        assert r.status_code == 401 and "secret" not in r.text, (method, path)
    assert c.get("/config", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/config", headers={"authorization": "Bearer s3cret-token"}).text == "secret page /config"
    assert c.get("/config", cookies={door.COOKIE: "forged"}).status_code == 401
    with pytest.raises(WebSocketDisconnect) as closed:
        with c.websocket_connect("/_stcore/stream") as ws:
            ws.receive_text()
    assert closed.value.code == 1008


def test_the_form_only_sends_you_back_to_this_server(token):
    c = _client()
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        r = c.post(door.LOGIN, data={"token": token, "next": evil})
        assert r.headers["location"] == "/", evil
    page = c.get(door.LOGIN, params={"next": '"><script>alert(1)</script>'})
    assert "<script>alert" not in page.text


def test_a_new_token_ends_the_old_logins(token, monkeypatch):
    c = _client()
    c.post(door.LOGIN, data={"token": token, "next": "/"})
    assert c.get("/jobs").status_code == 200
    monkeypatch.setenv("SQLGENIE_TOKEN", "another-token")
    assert c.get("/jobs").status_code == 401
