"""A taskgate runner with two handlers, one sync and one async.

Run it:  export TASKGATE_TOKEN=$(taskgate token create --scope tasks:work)
         taskgate runner examples.python.tasks:runner --url http://127.0.0.1:8000
   (or:  python -m runners examples.python.tasks:runner)
"""

from __future__ import annotations

import asyncio
from typing import Any

from runners import Permanent, Runner

runner = Runner(queues=["text"], concurrency=4)


@runner.handler("text.words")
def count_words(payload: dict[str, Any]) -> dict[str, int]:
    """Sync handlers run on the runner's thread pool."""
    text = payload.get("text")
    if not isinstance(text, str):
        raise Permanent("payload.text must be a string")
    return {"words": len(text.split())}


@runner.handler("text.reverse")
async def reverse(payload: dict[str, Any]) -> dict[str, str]:
    """Async handlers run on the event loop."""
    await asyncio.sleep(0)  # e.g. an HTTP call to another service
    return {"reversed": str(payload["text"])[::-1]}
