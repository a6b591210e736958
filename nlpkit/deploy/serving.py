"""``nlpkit serve``: a trained checkpoint or an export behind an HTTP API (FastAPI on uvicorn).

Requests are validated and tokenized on the server's worker threads; the model runs on one thread of its own,
where :class:`MicroBatcher` gathers the examples of concurrent requests into length-sorted batches and a streamed
generation decodes its steps between them. What one client can hold is bounded (:class:`ServerLimits`): requests
in flight, examples queued, body size, beams and decoding time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict, fields, is_dataclass
from functools import partial
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from nlpkit.deploy.batching import MicroBatcher
from nlpkit.deploy.limits import ServerLimits
from nlpkit.deploy.loading import load
from nlpkit.deploy.middleware import ACCESS, AccessLog, ClosingConnections, ConcurrencyLimit
from nlpkit.deploy.requests import (
    GenerateBody,
    InputsBody,
    RequestError,
    error_response,
    over_generation_limits,
    over_limits,
    read_body,
)
from nlpkit.plugin.errors import NlpkitError
from nlpkit.plugin.loader import plugin_versions, registry
from nlpkit.plugin.version import __version__
from nlpkit.training.task import Task


def create_app(task: Task, limits: ServerLimits | None = None, source: str = "") -> FastAPI:
    """The ASGI app serving ``task``: ``/predict``, ``/generate`` and ``/embed`` where the task has them,
    ``/health`` and ``/metadata``."""
    limits = limits or ServerLimits()
    batcher = MicroBatcher(task, limits)
    generation = getattr(task, "generation", None)
    generates = is_dataclass(generation) and callable(getattr(task, "generate_batch", None))
    generation_options = {f.name for f in fields(generation)} if generates else set()  # type: ignore[arg-type]
    draining = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(batcher.run())
        try:
            yield
        finally:  # uvicorn has let the requests in flight finish
            worker.cancel()
            batcher.model_thread.shutdown(wait=True)

    app = FastAPI(title="nlpkit", version=__version__, lifespan=lifespan)
    app.add_middleware(ConcurrencyLimit, limit=limits.max_connections)
    app.add_middleware(ClosingConnections, draining=draining)
    app.add_middleware(AccessLog)
    app.state.draining = draining  # set by the server on SIGTERM, for the drain window (DrainingServer)

    @app.exception_handler(RequestError)
    async def _refused(request: Request, error: RequestError) -> JSONResponse:
        response = error_response(error.status, str(error))
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(NlpkitError)
    async def _invalid_input(request: Request, error: NlpkitError) -> JSONResponse:
        return error_response(422, str(error))  # an input the task cannot read (a KG query of unknown entities, say)

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 while serving; 503 once shutting down."""
        if draining.is_set():
            return error_response(503, "shutting down")
        return JSONResponse({"status": "ok"})

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        """The task, its labels, the runtime and the plugin versions."""
        return {
            "task": registry("tasks").name_of(type(task)),
            "task_class": type(task).__qualname__,
            "source": source,
            "runtime": _runtime_name(task),
            "labels": task.labels,
            "endpoints": endpoints,
            "limits": asdict(limits),
            "batches": {"run": batcher.batches, "examples": batcher.examples},
            "nlpkit_version": __version__,
            "plugins": plugin_versions(),
        }

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        """``{"inputs": [...]}`` -> ``{"predictions": [...]}``, one per input, in order."""
        body = await read_body(request, InputsBody, limits)
        if problem := over_limits(body.inputs, limits):
            return error_response(422, problem)
        examples = await run_in_threadpool(_encode, task, body.inputs)
        return {"predictions": await batcher.run_examples(examples)}

    endpoints = ["/predict", "/health", "/metadata"]
    if generation_options:
        endpoints.append("/generate")

        @app.post("/generate")
        async def generate(request: Request) -> Any:
            """``{"inputs": [...], "options": {...}}`` -> ``{"generations": [...]}``; with ``"stream": true``
            (one input), server-sent events: ``data: {"text": piece}`` per piece, then ``event: done``."""
            body = await read_body(request, GenerateBody, limits)
            unknown = sorted(set(body.options) - generation_options)
            if unknown:
                known = ", ".join(sorted(generation_options))
                return error_response(422, f"options.{unknown[0]}: not a generation option (they are {known})")
            if problem := over_limits(body.inputs, limits):
                return error_response(422, problem)
            try:
                settings = generation.replace(**body.options)  # type: ignore[union-attr]
            except (TypeError, ValueError) as error:  # a value of the wrong type, or one that cannot work
                raise RequestError(422, f"options: {error}") from None
            if problem := over_generation_limits(settings, limits):
                return error_response(422, problem)
            if "max_time" in generation_options and settings.max_time is None:
                settings = settings.replace(max_time=limits.max_decode_s)
            if body.stream:
                if len(body.inputs) != 1:
                    return error_response(422, "inputs: stream one input at a time")
                pieces = task.stream(body.inputs[0], settings)  # type: ignore[attr-defined]
                return StreamingResponse(_events(pieces, batcher), media_type="text/event-stream")
            examples = await run_in_threadpool(_encode, task, body.inputs)
            function = partial(task.generate_batch, config=settings)  # type: ignore[attr-defined]
            generations = await batcher.run_examples(examples, function, key=repr(settings))
            return {"generations": [generation.to_dict() for generation in generations]}

    if callable(getattr(task, "embed_batch", None)):
        endpoints.append("/embed")

        @app.post("/embed")
        async def embed(request: Request) -> Any:
            """``{"inputs": [texts]}`` -> ``{"embeddings": [[...], ...]}``, unit-length vectors."""
            body = await read_body(request, InputsBody, limits)
            if not all(isinstance(text, str) for text in body.inputs):
                return error_response(422, "inputs: /embed takes texts")
            if problem := over_limits(body.inputs, limits):
                return error_response(422, problem)
            examples = await run_in_threadpool(_encode, task, body.inputs)
            vectors = await batcher.run_examples(examples, task.embed_batch, key="embed")  # type: ignore[attr-defined]
            return {"embeddings": [vector.tolist() for vector in vectors]}

    app.state.endpoints = endpoints  # what serve() announces
    return app


def _runtime_name(task: Task) -> str:
    """What runs the model: ``eager``, or the export's runtime (``OnnxRuntime``)."""
    return type(task.runtime).__name__ if task.runtime is not None else "eager"


def _encode(task: Task, items: list[Any]) -> list[dict[str, Any]]:
    """The task's encoded examples of a request's inputs, in one batched call (on a worker thread, off the model
    thread); an input the task cannot read is a 422 naming it."""
    try:
        return task.encode_many(items)
    except (KeyError, TypeError, ValueError) as error:  # ConfigError too; find the input to name
        failure = error
    for index, item in enumerate(items):
        try:
            task.encode(task.input_fields(item), labeled=False)
        except KeyError as error:
            raise RequestError(422, f"inputs.{index}: missing field {error}") from None
        except (TypeError, ValueError) as error:  # the task's own message
            raise RequestError(422, f"inputs.{index}: {error}") from None
    raise RequestError(422, f"inputs: {failure}") from None


async def _events(pieces: Iterator[str], batcher: MicroBatcher) -> AsyncIterator[str]:
    """Server-sent events of a generation's pieces, each decoded on the model thread (between other requests'
    batches); a client that goes away closes the generation there too."""
    started = time.perf_counter()
    try:
        while (piece := await batcher.call(next, pieces, None)) is not None:
            yield f"data: {json.dumps({'text': piece}, ensure_ascii=False)}\n\n"
        yield f"event: done\ndata: {json.dumps({'seconds': round(time.perf_counter() - started, 4)})}\n\n"
    finally:  # queued behind a step still running, never awaited: a cancelled stream cannot wait
        batcher.model_thread.submit(pieces.close)


#: how long connections still open when the port closes may carry their last requests
CLOSE_WAIT_S = 0.5


class DrainingServer(uvicorn.Server):
    """uvicorn's server, whose first SIGTERM or SIGINT drains before it stops: for ``drain_s`` seconds ``/health``
    answers 503 (so a load balancer stops sending) while every request is still answered, each response closing its
    connection; then the port closes (:meth:`shutdown`) and the requests in flight finish. A second signal stops at
    once."""

    def __init__(self, config: uvicorn.Config, draining: threading.Event, drain_s: float) -> None:
        super().__init__(config)
        self.draining, self.drain_s = draining, drain_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close the port first and give the open connections ``CLOSE_WAIT_S`` to carry the requests already on
        their way (each answered with ``Connection: close``); then uvicorn's own shutdown closes the idle ones and
        lets the requests in flight finish. Closing an idle connection drops a request that has just reached it
        unread; a connection the port refuses loses nothing, and a client may retry it elsewhere."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await asyncio.sleep(CLOSE_WAIT_S)
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Drain first; stop when already draining."""
        if self.draining.is_set():
            super().handle_exit(sig, frame)
            return
        self.draining.set()
        threading.Timer(self.drain_s, super().handle_exit, (sig, frame)).start()


def serve(path: str, host: str = "127.0.0.1", port: int = 8080, limits: ServerLimits | None = None) -> None:
    """Load ``path`` (a checkpoint, a run directory or an export) and serve it until SIGINT or SIGTERM, when it
    drains for ``limits.drain_s`` seconds and the requests in flight finish first."""
    limits = limits or ServerLimits()
    task = load(path)
    app = create_app(task, limits, source=path)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    ACCESS.addHandler(handler)
    ACCESS.setLevel(logging.INFO)
    ACCESS.propagate = False
    name = registry("tasks").name_of(type(task))
    ACCESS.info("serving %s (%s) from %s at http://%s:%d: %s; Ctrl-C stops", name, _runtime_name(task), path, host,
                port, " ".join(app.state.endpoints))  # fmt: skip
    # what is loaded by now lives as long as the server: a full collection no longer walks it, which paused every
    # request for a tenth of a second on a small model (a frozen object is still freed when its references go)
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=30,
        timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]
        limit_concurrency=2 * limits.max_connections,  # uvicorn's own backstop, past ConcurrencyLimit's 503s
    )
    DrainingServer(config, app.state.draining, limits.drain_s).run()
