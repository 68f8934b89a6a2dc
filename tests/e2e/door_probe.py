"""What another host sees of a console bound beyond localhost: run inside a second network namespace by
tests/e2e/test_doors.py, it knocks on every door (dashboard page URLs, the dashboard's websocket, the
playground's page and API, the router's API) without a token, with a wrong one and with the right one, in
plain HTTP and in a real Chromium, and prints what it saw as one JSON object.

    ip netns exec NS python -m tests.e2e.door_probe --dash URL --play URL --router URL --token T --shots DIR
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re

import requests

PAGES = {"/": "Jobs", "/jobs": "Jobs", "/jobs?job=1": "Jobs", "/new-job": "New job", "/new_job": "New job",
         "/models": "Models", "/training": "Training", "/serving": "Serving", "/data": "Data", "/gpus": "GPUs & machine"}
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _http(method: str, url: str, **kw) -> dict:
    try:
        r = requests.request(method, url, timeout=20, allow_redirects=False, **kw)
        return {"status": r.status_code, "location": r.headers.get("location", ""), "body": r.text[:2000]}
    except requests.RequestException as e:
        return {"status": None, "error": type(e).__name__}


async def _ws(url: str, headers: dict) -> str:
    import websockets

    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
            await ws.close()
            return "open"
    except Exception as e:  # refused before opening: InvalidStatus (403), or closed
        return f"refused: {type(e).__name__} {getattr(getattr(e, 'response', None), 'status_code', '')}".strip()


def plain(dash: str, play: str, router: str, token: str) -> dict:
    bearer = {"Authorization": f"Bearer {token}"}
    wrong = {"Authorization": "Bearer not-the-token"}
    out: dict = {"dash": {}, "play": {}, "router": {}}
    for path in PAGES:
        out["dash"][path] = _http("GET", dash + path, headers=HTML)
    for path in ("/_stcore/health", "/_stcore/host-config", "/_stcore/upload_file/x/y"):
        out["dash"][path] = _http("GET", dash + path)
    ws = dash.replace("http://", "ws://") + "/_stcore/stream"
    out["dash"]["ws"] = asyncio.run(_ws(ws, {}))
    out["dash"]["ws_wrong"] = asyncio.run(_ws(ws, {"Cookie": "sqlgenie_door=forged"}))
    out["dash"]["ws_bearer"] = asyncio.run(_ws(ws, bearer))
    for method, path in (("GET", "/"), ("GET", "/config"), ("GET", "/gradio_api/info"),
                         ("POST", "/gradio_api/queue/join"), ("POST", "/gradio_api/call/on_load"),
                         ("GET", "/gradio_api/openapi.json")):
        out["play"][f"{method} {path}"] = _http(method, play + path, headers=HTML if path == "/" else {})
    out["play"]["GET /config bearer"] = _http("GET", play + "/config", headers=bearer)
    body = {"model": "sqlgenie", "prompt": "SELECT", "max_tokens": 4, "temperature": 0}
    for who, h in (("none", {}), ("wrong", wrong), ("right", bearer)):
        out["router"][f"completion {who}"] = _http("POST", router + "/v1/completions", json=body, headers=h)
    for path in ("/v1/models", "/metrics", "/workers", "/health"):
        out["router"][path] = _http("GET", router + path)
    return out


def browser(dash: str, play: str, token: str, shots: str) -> dict:
    """A new user's browser on another host: each page URL asks for the token first, a wrong one says so,
    the right one opens that very page; then the playground opens with the same login."""
    from playwright.sync_api import sync_playwright

    out: dict = {"pages": {}}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium",
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for path, header in PAGES.items():
            ctx = b.new_context(viewport={"width": 1300, "height": 900})
            page = ctx.new_page()
            page.goto(dash + path)
            seen = {"login": "/_door/login" in page.url, "form": page.locator("input[name=token]").count() == 1}
            page.fill("input[name=token]", "wrong-token")
            page.click("button[type=submit]")
            seen["wrong"] = "Wrong token" in page.content()
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            try:
                page.get_by_role("heading", name=header, exact=True).wait_for(timeout=60000)
                seen["opened"] = True
            except Exception:
                seen["opened"] = False
            seen["url"] = re.sub(r"^https?://[^/]+", "", page.url)
            if path in ("/jobs?job=1", "/new-job"):
                page.screenshot(path=f"{shots}/door-{path.strip('/').replace('?', '-').replace('=', '')}.png")
            out["pages"][path] = seen
            if path == "/new-job":         # the same login opens the playground on this host (another port)
                pg = ctx.new_page()
                pg.goto(play + "/")
                try:
                    pg.wait_for_selector("#go", timeout=60000)
                    pg.wait_for_timeout(3000)
                    out["playground_with_dashboard_login"] = pg.locator("#deployment input").input_value()
                    pg.click("#go")                  # its answer comes through the router's gate
                    pg.wait_for_selector("#a_stats:has-text('ms')", timeout=180000)
                    out["playground_answer"] = pg.locator("#a_stats").inner_text()
                    pg.screenshot(path=f"{shots}/door-playground.png", full_page=True)
                except Exception as e:
                    out["playground_with_dashboard_login"] = f"failed: {type(e).__name__}: {pg.url}"
            ctx.close()
        ctx = b.new_context()
        page = ctx.new_page()
        page.goto(play + "/")
        out["playground_login"] = "/_door/login" in page.url and page.locator("input[name=token]").count() == 1
        page.screenshot(path=f"{shots}/door-login.png")
        b.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    for k in ("dash", "play", "router", "token", "shots"):
        p.add_argument(f"--{k}", required=True)
    a = p.parse_args()
    print(json.dumps({"plain": plain(a.dash, a.play, a.router, a.token),
                      "browser": browser(a.dash, a.play, a.token, a.shots)}))


if __name__ == "__main__":
    main()
