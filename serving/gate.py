"""The router's front door: vllm-router authenticates nobody (its --api-key is what it sends to its workers),
so with SQLGENIE_TOKEN set a deployment binds the router to 127.0.0.1 and puts this gate on the public
address. Every request but /health needs `Authorization: Bearer <token>` (what OpenAI clients send as their
API key); the rest is passed to the router and its answer streamed back unchanged (status, headers, body,
server-sent events). The token comes from the environment, never the command line.

    SQLGENIE_TOKEN=... python -m serving.gate --listen 0.0.0.0:8000 --upstream http://127.0.0.1:41234

A deployment starts, records and supervises it like the router (serving/launch.py); its log is gate.log.
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from core import access

# Headers that belong to one hop of the connection, not to the request or answer being passed on.
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
       "transfer-encoding", "upgrade", "host", "content-length"}
WRONG_WAIT_S = 1.0
UNAUTHORIZED = {"error": {"message": "missing or wrong token: send the console token (SQLGENIE_TOKEN) as "
                                     "`Authorization: Bearer <token>` (an OpenAI client's api_key)",
                          "type": "unauthorized", "code": 401}}


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def make_app(upstream: str):
    from aiohttp import ClientSession, ClientTimeout, web

    async def startup(app) -> None:
        # no total timeout: the router has its own per-request one; no decompression: bytes pass as they came
        app["session"] = ClientSession(timeout=ClientTimeout(total=None, sock_connect=10), auto_decompress=False)

    async def cleanup(app) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.path != "/health" and not access.bearer_ok(request.headers.get("Authorization")):
            await asyncio.sleep(WRONG_WAIT_S)
            return web.json_response(UNAUTHORIZED, status=401, headers={"WWW-Authenticate": 'Bearer realm="sqlgenie"'})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = request.content if request.body_exists else None
        try:
            upstream_resp = await request.app["session"].request(request.method, upstream + str(request.rel_url),
                                                                 headers=headers, data=body, allow_redirects=False)
        except OSError as e:
            return web.json_response({"error": {"message": f"the router did not answer: {e}", "type": "unavailable",
                                                 "code": 502}}, status=502)
        async with upstream_resp:
            out = web.StreamResponse(status=upstream_resp.status, reason=upstream_resp.reason,
                                     headers={k: v for k, v in upstream_resp.headers.items() if k.lower() not in HOP})
            await out.prepare(request)
            async for chunk in upstream_resp.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.gate", description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="host:port to listen on (the deployment's public address)")
    p.add_argument("--upstream", required=True, help="the router's local URL, e.g. http://127.0.0.1:41234")
    a = p.parse_args(argv)
    if not access.token():
        print("serving.gate: SQLGENIE_TOKEN is not set: a gate without a token would let everyone in", file=sys.stderr)
        return 2
    from aiohttp import web

    host, port = _split(a.listen)
    web.run_app(make_app(a.upstream.rstrip("/")), host=host, port=port, print=None, access_log=None,
                handle_signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
