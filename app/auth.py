"""Who may open the console: localhost by default; any other bind address needs SQLGENIE_TOKEN (one variable
for the dashboard, the playground and the router's API key).

    from app.auth import bind_address, check_bind, refusal, token_ok
    check_bind("0.0.0.0")      # raises SystemExit with a clear line when no token is set
"""
from __future__ import annotations

import hmac
import os

LOCAL = ("127.0.0.1", "localhost", "::1")


def bind_address() -> str:
    return os.environ.get("SQLGENIE_HOST", "127.0.0.1")


def token() -> str:
    return os.environ.get("SQLGENIE_TOKEN", "")


def refusal(host: str | None = None) -> str:
    """Why the console must not serve on `host` ('' when it may)."""
    host = host or bind_address()
    if host not in LOCAL and not token():
        return (f"refusing to listen on {host} without a token: set SQLGENIE_TOKEN (a password for the console) "
                "and start again, or bind to 127.0.0.1")
    return ""


def check_bind(host: str | None = None) -> None:
    why = refusal(host)
    if why:
        raise SystemExit(why)


def token_ok(given: str | None) -> bool:
    return bool(token()) and hmac.compare_digest((given or "").encode(), token().encode())
