"""An OpenAI-compatible app under test, for server-mode tests: it answers chat completions by
asking the fake OpenAI server itself, through the OpenAI SDK, so its own calls are recorded.

Run by uvicorn in a subprocess; reads ``FAKE_OPENAI_URL``. Wrapped in api-recorder's ASGI
middleware, which is all a server needs to record into the calling test's recordings.
"""

from __future__ import annotations

import json
import os

import openai

from api_recorder import TestIdMiddleware


async def answer(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body or b"{}")
    async with openai.AsyncOpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-app", max_retries=0) as llm:
        completion = await llm.chat.completions.create(
            model=request.get("model", "gpt-4o"), messages=request.get("messages", [])
        )
    payload = completion.model_dump_json().encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


app = TestIdMiddleware(answer)
