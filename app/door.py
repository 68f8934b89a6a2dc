"""The one door of the console's web apps: an ASGI middleware in front of every URL of the dashboard
(Streamlit's st.App) and the playground (Gradio's FastAPI app), pages, API, websockets and files alike.

With SQLGENIE_TOKEN set, a request gets through only with the login cookie (set by the door's own form at
/_door/login after the token was typed; the same cookie opens both apps on one host) or an
`Authorization: Bearer <token>` header (scripts). Anyone else: a browser asking for a page is sent to the
form (and back to the page it asked for once in); an API call gets 401; a websocket is closed before it
opens. Without a token the door stands open, and core/access.py keeps such a console on localhost.

    from starlette.middleware import Middleware
    from app.door import Door
    st.App("views/shell.py", middleware=[Middleware(Door)])          # app/dashboard.py
    demo.launch(app_kwargs={"middleware": [Middleware(Door)]})        # app/playground.py
"""
from __future__ import annotations

import asyncio
import html
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, urlsplit

from core import access

LOGIN = "/_door/login"
LOGOUT = "/_door/logout"
COOKIE = "sqlgenie_door"
WRONG = "Wrong token: use the value of SQLGENIE_TOKEN the console was started with."
WRONG_WAIT_S = 1.0          # each wrong try waits this long: guessing a token by the thousand is slow


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookie(headers: dict[str, str]) -> str:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:          # a malformed cookie header is no login, not an error
        return ""
    return jar[COOKIE].value if COOKIE in jar else ""


def headers_let_in(headers: dict[str, str]) -> bool:
    """Whether a request with these headers may pass: no token set, the login cookie, or the bearer token."""
    if not access.token():
        return True
    h = {k.lower(): v for k, v in headers.items()}
    return access.cookie_ok(_cookie(h)) or access.bearer_ok(h.get("authorization"))


def _safe_next(target: str) -> str:
    """Only a path on this server (never //other.host or a scheme) may be where the form sends you back to."""
    parts = urlsplit(target or "/")
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_page(next_path: str, error: str = "") -> str:
    err = f'<p class="err">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>sqlgenie: console token</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;background:#f6f7f9;display:flex;justify-content:center;padding-top:12vh}}
form{{background:#fff;padding:2rem 2.5rem;border-radius:10px;box-shadow:0 1px 6px #0002;min-width:22rem}}
h1{{font-size:1.3rem;margin:0 0 1rem}}label{{display:block;margin-bottom:.4rem;color:#333}}
input[type=password]{{width:100%;padding:.55rem;font-size:1rem;box-sizing:border-box;margin-bottom:1rem}}
button{{padding:.5rem 1.2rem;font-size:1rem;background:#ff4b4b;color:#fff;border:0;border-radius:6px;cursor:pointer}}
.err{{color:#b00020}} .hint{{color:#666;font-size:.85rem;margin-top:1rem}}</style></head><body>
<form method="post" action="{LOGIN}"><h1>sqlgenie</h1>{err}
<label for="token">Console token (SQLGENIE_TOKEN)</label>
<input id="token" name="token" type="password" autofocus autocomplete="current-password">
<input type="hidden" name="next" value="{html.escape(next_path)}">
<button type="submit">Open</button>
<p class="hint">The token the console was started with. One login opens the dashboard and the playground.</p>
</form></body></html>"""


async def _send(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive, limit: int = 64 * 1024) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body") or len(body) > limit:
            return body[:limit]


def _wants_page(scope, headers: dict[str, str]) -> bool:
    return scope.get("method") in ("GET", "HEAD") and "text/html" in headers.get("accept", "")


class Door:
    """ASGI middleware: the login form at /_door/login, then only the token's holders pass (see module doc)."""

    def __init__(self, app, open_paths: tuple[str, ...] = ()):
        self.app = app
        self.open_paths = set(open_paths)       # a server's own start-up call to itself (Gradio's), nothing else

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or not access.token():
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if scope["type"] == "http" and path == LOGIN:
            return await self._login(scope, receive, send)
        if scope["type"] == "http" and path == LOGOUT:
            return await _send(send, 303, b"", [(b"location", LOGIN.encode()),
                                                (b"set-cookie", f"{COOKIE}=; Path=/; Max-Age=0".encode())])
        if path in self.open_paths or headers_let_in(_headers(scope)):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await receive()                                   # websocket.connect
            return await send({"type": "websocket.close", "code": 1008, "reason": "missing or wrong token"})
        headers = _headers(scope)
        if _wants_page(scope, headers):
            target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
            return await _send(send, 303, b"", [(b"location", f"{LOGIN}?next={quote(target, safe='')}".encode())])
        body = (b'{"error": "missing or wrong token: log in at ' + LOGIN.encode()
                + b' or send Authorization: Bearer <SQLGENIE_TOKEN>"}')
        await _send(send, 401, body, [(b"content-type", b"application/json"),
                                      (b"www-authenticate", b'Bearer realm="sqlgenie"')])

    async def _login(self, scope, receive, send):
        html_type = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]
        if scope.get("method") != "POST":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            page = login_page(_safe_next((query.get("next") or ["/"])[0]))
            return await _send(send, 200, page.encode(), html_type)
        form = parse_qs((await _read_body(receive)).decode("utf-8", "replace"))
        next_path = _safe_next((form.get("next") or ["/"])[0])
        if access.token_ok((form.get("token") or [""])[0]):
            cookie = f"{COOKIE}={access.cookie_value()}; Path=/; HttpOnly; SameSite=Lax; Max-Age={30 * 86400}"
            return await _send(send, 303, b"", [(b"location", next_path.encode()), (b"set-cookie", cookie.encode())])
        await asyncio.sleep(WRONG_WAIT_S)
        await _send(send, 401, login_page(next_path, WRONG).encode(), html_type)
