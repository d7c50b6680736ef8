"""A minimal webhook receiver for benchmarks: answers every POST with 204 and remembers when each
``webhook-id`` arrived (Unix seconds); ``GET /stats`` returns ``[[webhook_id, arrived_at], …]``.

Run: ``python bench/receiver.py PORT`` (uvicorn, one process)."""

from __future__ import annotations

import json
import sys
import time

import uvicorn

ARRIVALS: list[tuple[str, float]] = []


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    while True:  # drain the body
        message = await receive()
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        headers = dict(scope["headers"])
        ARRIVALS.append((headers.get(b"webhook-id", b"").decode(), time.time()))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = json.dumps(ARRIVALS).encode()
    ARRIVALS.clear()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
