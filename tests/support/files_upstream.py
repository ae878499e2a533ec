"""A stand-in for OpenAI's Files, Uploads and Batches APIs on a real loopback port.

One provider account, as the gateway's shared key sees it: every object is visible to every caller, as on
the real API, so a test shows the gateway (not the stand-in) keeping keys apart. Shapes follow OpenAI's
API reference: file, upload, upload.part and batch objects, cursor lists (`after`, `limit`, `order`,
`has_more`, `first_id`, `last_id`), 404s as `{"error": {...}}`.

Batches do not run by themselves: `finish(batch_id)` completes one the way the provider does, writing an
output file with one chat answer per input line, each reporting `usage` (`PROMPT` + `COMPLETION` tokens per
request), so a test knows exactly what the gateway must charge. `gets` counts requests per path.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

from support.standin import StandIn

PROMPT = 11
COMPLETION = 7


class FilesUpstream(StandIn):
    name = "files-upstream"

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.parts: dict[str, bytes] = {}
        self.gets: Counter[str] = Counter()
        self.refuse_key: str | None = None  # a request with this Bearer key gets 401 invalid_api_key
        self._ids = itertools.count(1)
        self._clock = itertools.count(1_760_000_000)
        super().__init__()

    # -- helpers -------------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}abc"

    @staticmethod
    def _json(obj: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")

    def _missing(self, what: str, object_id: str) -> web.Response:
        error = {
            "message": f"No such {what} object: {object_id}",
            "type": "invalid_request_error",
            "param": "id",
            "code": None,
        }
        return self._json({"error": error}, 404)

    def _add_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = self._id("file-")
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": next(self._clock),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
        }
        self.files[file_id] = obj
        self.contents[file_id] = content
        return obj

    def _page(self, request: web.Request, items: list[dict[str, Any]], default: int) -> web.Response:
        q = request.query
        items = sorted(
            items, key=lambda o: (o["created_at"], o["id"]), reverse=q.get("order", "desc") != "asc"
        )
        if "after" in q:
            ids = [o["id"] for o in items]
            items = items[ids.index(q["after"]) + 1 :] if q["after"] in ids else []
        limit = int(q.get("limit", default))
        page = items[:limit]
        return self._json(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            }
        )

    def finish(self, batch_id: str) -> dict[str, Any]:
        """Complete a batch as the provider does: an output file of answers, each with its usage."""
        batch = self.batches[batch_id]
        lines = [
            orjson.loads(line) for line in self.contents[batch["input_file_id"]].splitlines() if line.strip()
        ]
        out = []
        for i, line in enumerate(lines):
            body = {
                "id": f"chatcmpl-{batch_id}-{i}",
                "object": "chat.completion",
                "created": 1_760_000_000,
                "model": line["body"]["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": PROMPT,
                    "completion_tokens": COMPLETION,
                    "total_tokens": PROMPT + COMPLETION,
                },
            }
            out.append(
                {
                    "id": f"batch_req_{i}",
                    "custom_id": line["custom_id"],
                    "response": {"status_code": 200, "request_id": f"req_{i}", "body": body},
                    "error": None,
                }
            )
        content = b"".join(orjson.dumps(o) + b"\n" for o in out)
        output = self._add_file(f"{batch_id}_output.jsonl", "batch_output", content)
        now = next(self._clock)
        batch.update(
            status="completed",
            output_file_id=output["id"],
            in_progress_at=now,
            finalizing_at=now,
            completed_at=now,
            request_counts={"total": len(lines), "completed": len(lines), "failed": 0},
        )
        return batch

    # -- routes ------------------------------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.refuse_key and request.headers.get("authorization") == f"Bearer {self.refuse_key}":
            error = {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": None}
            return self._json({"error": {**error, "code": "invalid_api_key"}}, 401)
        return await handler(request)

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._auth)
        app.router.add_post("/v1/files", self.create_file)
        app.router.add_get("/v1/files", self.list_files)
        app.router.add_get("/v1/files/{id}", self.get_file)
        app.router.add_delete("/v1/files/{id}", self.delete_file)
        app.router.add_get("/v1/files/{id}/content", self.file_content)
        app.router.add_post("/v1/batches", self.create_batch)
        app.router.add_get("/v1/batches", self.list_batches)
        app.router.add_get("/v1/batches/{id}", self.get_batch)
        app.router.add_post("/v1/batches/{id}/cancel", self.cancel_batch)
        app.router.add_post("/v1/uploads", self.create_upload)
        app.router.add_post("/v1/uploads/{id}/parts", self.add_part)
        app.router.add_post("/v1/uploads/{id}/complete", self.complete_upload)
        app.router.add_post("/v1/uploads/{id}/cancel", self.cancel_upload)
        app.router.add_get("/v1/vector_stores", self.list_vector_stores)

    async def create_file(self, request: web.Request) -> web.Response:
        self.received.append(("POST", request.path))
        fields: dict[str, Any] = {}
        async for part in await request.multipart():  # type: ignore[union-attr]
            fields[part.name or ""] = (part.filename, await part.read())  # type: ignore[union-attr]
        filename, content = fields["file"]
        return self._json(self._add_file(filename or "upload", fields["purpose"][1].decode(), bytes(content)))

    async def list_files(self, request: web.Request) -> web.Response:
        self.received.append(("GET", request.path))
        items = list(self.files.values())
        if "purpose" in request.query:
            items = [f for f in items if f["purpose"] == request.query["purpose"]]
        return self._page(request, items, 10_000)

    async def get_file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        self.gets[request.path] += 1
        return self._json(self.files[file_id]) if file_id in self.files else self._missing("File", file_id)

    async def delete_file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        self.received.append(("DELETE", request.path))
        if self.files.pop(file_id, None) is None:
            return self._missing("File", file_id)
        self.contents.pop(file_id, None)
        return self._json({"id": file_id, "object": "file", "deleted": True})

    async def file_content(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        self.gets[request.path] += 1
        if file_id not in self.contents:
            return self._missing("File", file_id)
        return web.Response(body=self.contents[file_id], content_type="application/octet-stream")

    async def create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(("POST", request.path, body))
        if body.get("input_file_id") not in self.files:
            return self._missing("File", str(body.get("input_file_id")))
        batch_id = self._id("batch_")
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": next(self._clock),
            "in_progress_at": None,
            "expires_at": None,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        self.batches[batch_id] = batch
        return self._json(batch)

    async def list_batches(self, request: web.Request) -> web.Response:
        self.received.append(("GET", request.path))
        return self._page(request, list(self.batches.values()), 20)

    async def get_batch(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["id"]
        self.gets[request.path] += 1
        return (
            self._json(self.batches[batch_id])
            if batch_id in self.batches
            else self._missing("Batch", batch_id)
        )

    async def cancel_batch(self, request: web.Request) -> web.Response:
        batch_id = request.match_info["id"]
        self.received.append(("POST", request.path))
        if batch_id not in self.batches:
            return self._missing("Batch", batch_id)
        batch = self.batches[batch_id]
        batch.update(status="cancelled", cancelling_at=next(self._clock), cancelled_at=next(self._clock))
        return self._json(batch)

    async def create_upload(self, request: web.Request) -> web.Response:
        body = await request.json()
        upload_id = self._id("upload_")
        upload = {
            "id": upload_id,
            "object": "upload",
            "bytes": body["bytes"],
            "created_at": next(self._clock),
            "filename": body["filename"],
            "purpose": body["purpose"],
            "status": "pending",
            "expires_at": next(self._clock) + 3600,
            "file": None,
            "parts": [],
        }
        self.uploads[upload_id] = upload
        return self._json({k: v for k, v in upload.items() if k != "parts"})

    async def add_part(self, request: web.Request) -> web.Response:
        upload_id = request.match_info["id"]
        if upload_id not in self.uploads:
            return self._missing("Upload", upload_id)
        data = b""
        async for part in await request.multipart():  # type: ignore[union-attr]
            if part.name == "data":  # type: ignore[union-attr]
                data = bytes(await part.read())  # type: ignore[union-attr]
        part_id = self._id("part_")
        self.parts[part_id] = data
        self.uploads[upload_id]["parts"].append(part_id)
        return self._json(
            {"id": part_id, "object": "upload.part", "created_at": next(self._clock), "upload_id": upload_id}
        )

    async def complete_upload(self, request: web.Request) -> web.Response:
        upload_id = request.match_info["id"]
        if upload_id not in self.uploads:
            return self._missing("Upload", upload_id)
        body = await request.json()
        upload = self.uploads[upload_id]
        content = b"".join(self.parts[p] for p in body["part_ids"])
        upload["file"] = self._add_file(upload["filename"], upload["purpose"], content)
        upload["status"] = "completed"
        return self._json({k: v for k, v in upload.items() if k != "parts"})

    async def cancel_upload(self, request: web.Request) -> web.Response:
        upload_id = request.match_info["id"]
        if upload_id not in self.uploads:
            return self._missing("Upload", upload_id)
        self.uploads[upload_id]["status"] = "cancelled"
        return self._json({k: v for k, v in self.uploads[upload_id].items() if k != "parts"})

    async def list_vector_stores(self, request: web.Request) -> web.Response:
        self.received.append(("GET", request.path))
        return self._json(
            {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
        )


def batch_input(model: str, count: int) -> bytes:
    """A batch input file of `count` chat requests for `model`."""
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"hello {i}"}]},
        }
        for i in range(count)
    ]
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)
