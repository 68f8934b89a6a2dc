"""Who may use what sqlgenie serves: one token (SQLGENIE_TOKEN) for every door, and where we may listen.

Every door checks it the same way: the console's two web apps (app/door.py, a cookie after a login form, or
a bearer header) and the router's front (serving/gate.py, a bearer header, as OpenAI clients send it).
Binding beyond localhost (any address but loopback, or every interface) needs the token; without one we
refuse to listen there, wherever the process was started from. The token travels in the environment, never
on a command line nor in a state file.

    from core.access import token, token_ok, bearer_ok, refusal, check_bind, is_local
    check_bind("0.0.0.0")          # SystemExit with one clear line when no token is set
    bearer_ok("Bearer s3cret")     # True when that is the token
"""
from __future__ import annotations

import hashlib
import hmac

from core import envs

TOKEN_ENV = "SQLGENIE_TOKEN"
HOST_ENV = "SQLGENIE_HOST"
LOCAL = ("127.0.0.1", "localhost", "::1")


def token() -> str:
    return envs.text(TOKEN_ENV)


def bind_address() -> str:
    """The address the console's parts listen on (SQLGENIE_HOST, default loopback)."""
    return envs.text(HOST_ENV)


def is_local(host: str | None) -> bool:
    """Loopback only. None / '' (a server's unset address: every interface), 0.0.0.0 and :: are not local;
    a unix socket is."""
    if not host:
        return False
    return host in LOCAL or host.startswith("127.") or host.startswith("unix://")


def refusal(host: str | None) -> str:
    """Why nothing may listen on `host` ('' when it may): beyond localhost needs the token."""
    if is_local(host) or token():
        return ""
    where = host if host else "every interface (no address was set)"
    return (f"refusing to listen on {where} without a token: set {TOKEN_ENV} (a password for the console) and start "
            "again, or bind to 127.0.0.1")


def check_bind(host: str | None) -> None:
    why = refusal(host)
    if why:
        raise SystemExit(why)


def token_ok(given: str | None) -> bool:
    """The given text is the token (constant time); always False when no token is set."""
    want = token()
    return bool(want) and hmac.compare_digest((given or "").encode(), want.encode())


def bearer_ok(header: str | None) -> bool:
    """An `Authorization: Bearer <token>` header value carries the token."""
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and token_ok(value.strip())


def cookie_value() -> str:
    """What the login cookie holds: a keyed hash of the token (so the cookie is not the token itself, and a new
    token ends every old login)."""
    return hmac.new(token().encode(), b"sqlgenie-door-v1", hashlib.sha256).hexdigest()


def cookie_ok(given: str | None) -> bool:
    return bool(token()) and hmac.compare_digest((given or "").encode(), cookie_value().encode())


def auth_header() -> dict:
    """Headers our own clients send to a door (empty when no token is set)."""
    return {"Authorization": f"Bearer {token()}"} if token() else {}
