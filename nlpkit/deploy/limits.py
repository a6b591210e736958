"""The server's settings: request limits and micro-batching."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServerLimits:
    """What one request may hold, and how requests are batched together.

    :param max_batch: the most examples the model runs at once
    :param max_wait_ms: how long the first request of a batch waits for others to join it
    :param max_tokens: the most tokens (padding included) in one model batch: how long any other request can wait
        behind one batch of long inputs
    :param max_inputs: the most inputs in one request
    :param max_text_chars: the longest text of an input, in characters
    :param max_body_bytes: the largest request body
    :param max_queued: the most examples waiting for the model; a request beyond is refused (503, ``Retry-After``)
    :param max_beams: the most beams a ``/generate`` request may ask for (``num_beams``)
    :param max_return_sequences: the most generations per input a request may ask for
    :param max_new_tokens: the most tokens a request may ask to generate per input
    :param max_decode_s: the longest a generation may decode (its ``max_time``; a request may ask for less): what
        it has by then is its answer
    :param max_connections: the most requests in flight (streams included); one beyond is refused at once (503,
        ``Retry-After``) before its body is read
    :param keep_alive_s: how long an idle connection stays open; longer than clients' and load balancers' own
        (httpx's 5 s, nginx's and AWS load balancers' 60 s), so that they close it first: a request sent on a
        connection at the moment the server closes it for idleness is lost unread
    :param drain_s: after SIGTERM, how long ``/health`` answers 503 while requests are still served, before the
        port closes
    """

    max_batch: int = 64
    max_wait_ms: float = 5.0
    max_tokens: int = 4096
    max_inputs: int = 256
    max_text_chars: int = 20_000
    max_body_bytes: int = 2**20
    max_queued: int = 4096
    max_beams: int = 8
    max_return_sequences: int = 8
    max_new_tokens: int = 512
    max_decode_s: float = 10.0
    max_connections: int = 512
    keep_alive_s: float = 75.0
    drain_s: float = 1.0
