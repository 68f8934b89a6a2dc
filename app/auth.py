"""Who may open the console: localhost by default; any other bind address needs SQLGENIE_TOKEN.

    from app.auth import bind_address, check_bind
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


def check_bind(host: str | None = None) -> None:
    host = host or bind_address()
    if host not in LOCAL and not token():
        raise SystemExit(f"refusing to listen on {host}: set SQLGENIE_TOKEN (a password for the console) "
                         "or bind to 127.0.0.1")


def token_ok(given: str | None) -> bool:
    return bool(token()) and hmac.compare_digest((given or "").encode(), token().encode())
