"""What the server accepts: request bodies validated field by field, the limits one request may not pass, and
the refusals (one line naming the field or the limit, and its HTTP status)."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nlpkit.deploy.limits import ServerLimits


class InputsBody(BaseModel):
    """``/predict`` and ``/embed``: the inputs (texts, or dicts of a task's fields)."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[str | dict[str, Any]] = Field(min_length=1)


class GenerateBody(BaseModel):
    """``/generate``: prompts, streaming, and generation options that override the model's defaults."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[str] = Field(min_length=1)
    stream: bool = False
    options: dict[str, Any] = Field(default_factory=dict)


Body = TypeVar("Body", bound=BaseModel)
#: how pydantic names the members of an input's type in an error's location, and what the message says instead
_UNION_MEMBERS = {"str", "dict[str,any]"}
_ONE_INPUT = "an input is a text or an object of the task's fields"


def over_limits(items: list[Any], limits: ServerLimits) -> str | None:
    """What in a request's inputs is over the limits (naming the field), if anything."""
    if len(items) > limits.max_inputs:
        return f"inputs: {len(items)} inputs; at most {limits.max_inputs} per request"
    for index, item in enumerate(items):
        values = [("", item)] if isinstance(item, str) else [(f".{k}", v) for k, v in item.items()]
        for suffix, value in values:
            if isinstance(value, str) and len(value) > limits.max_text_chars:
                return f"inputs.{index}{suffix}: a text of {len(value)} characters; at most {limits.max_text_chars}"
    return None


def error_response(status: int, message: str) -> JSONResponse:
    """The JSON answer ``{"error": message}`` of a refused request."""
    return JSONResponse({"error": message}, status_code=status)


class RequestError(Exception):
    """A request the server refuses: its HTTP status and one line naming what is wrong."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def over_generation_limits(settings: Any, limits: ServerLimits) -> str | None:
    """What in a request's generation settings costs more than the server allows (naming the option), if anything:
    one request must not hold the model thread for long."""
    caps = {
        "num_beams": limits.max_beams,
        "num_return_sequences": limits.max_return_sequences,
        "max_new_tokens": limits.max_new_tokens,
        "max_time": limits.max_decode_s,
    }
    for name, cap in caps.items():
        value = getattr(settings, name, None)
        if value is not None and value > cap:
            return f"options.{name}: at most {cap} on this server, not {value}"
    return None


#: a body over the limit is still read, and dropped, up to this many times the limit, so that a client still
#: sending it reads its 413 instead of a reset connection (a lingering close); past that the connection closes
LINGER_FACTOR = 4


async def read_body(request: Request, model: type[Body], limits: ServerLimits) -> Body:
    """The request's JSON body as ``model`` (whatever its content type): 413 when over ``max_body_bytes``, 400 when
    not JSON, 422 naming the first invalid field (``inputs.3``)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > LINGER_FACTOR * limits.max_body_bytes:
        raise RequestError(413, f"request body of {declared} bytes; at most {limits.max_body_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():  # a chunked body has no length to check first: keep none past the limit
        size += len(chunk)
        if size <= limits.max_body_bytes:
            chunks.append(chunk)
        elif size > LINGER_FACTOR * limits.max_body_bytes:
            break
    if size > limits.max_body_bytes:
        what = f"of {declared} bytes" if declared.isdigit() else f"over {limits.max_body_bytes} bytes"
        raise RequestError(413, f"request body {what}; at most {limits.max_body_bytes}")
    raw = b"".join(chunks)
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        problem = error.errors()[0]
        if problem["type"] == "json_invalid":
            raise RequestError(400, f"the request body is not valid JSON ({problem['msg']})") from None
        where = ".".join(str(part) for part in problem["loc"] if part not in _UNION_MEMBERS) or "body"
        message = _ONE_INPUT if _UNION_MEMBERS & set(problem["loc"]) else problem["msg"]
        raise RequestError(422, f"{where}: {message}") from None
