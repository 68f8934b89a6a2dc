"""ASGI middleware sqlgenie adds to its vLLM replicas (`--middleware sqlgenie_replica_header.ReplicaHeader`, this
folder on the replica's PYTHONPATH): every HTTP answer carries `x-sqlgenie-replica: <index>@<device>` (the
replica's SQLGENIE_REPLICA, set by serving/plan.py), which vllm-router and the token gate pass on, so a client
knows which replica answered from the answer itself (the playground's "answered by"), not from counters
scraped before and after, which another client's request could move.
"""
import os

HEADER = b"x-sqlgenie-replica"


class ReplicaHeader:
    def __init__(self, app):
        self.app = app
        self.value = os.environ.get("SQLGENIE_REPLICA", "").encode("latin-1", "replace")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.value:
            await self.app(scope, receive, send)
            return

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (HEADER, self.value)]}
            await send(message)

        await self.app(scope, receive, send_with_header)
