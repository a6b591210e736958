"""``nlpkit serve`` under load and faults: 200 concurrent HTTP clients for 60 s against three served models.

A classifier (``/predict``), a language model (plain and streamed ``/generate``) and a sentence embedder
(``/embed``), each briefly trained on the review sentences and served in its own process with the default limits.
The clients (asyncio ``httpx``) are users as locust models them: each pauses 0.5 to 1.5 ``--think_s`` between
requests, and they mix well-formed requests of real sentences with malformed JSON, bodies over the limit (declared
and chunked), slow readers of a stream and clients that leave mid-stream; one more client sends the costliest
requests the limits allow (a body just under ``--max_body_bytes``, 8 beams of 512 tokens) back to back.
Then every server gets SIGTERM while the clients go on.

Figures: requests/s and p50/p99 latency per endpoint, refusals (503/429 with ``Retry-After``), 5xx and failed
well-formed requests (goal: none), small ``/predict`` p99 under load against its p99 unloaded (measured first, in
the same run; goal: under 10x), resident memory growth of each server (goal: under 10%), and after SIGTERM whether
every request answered before the port closed and ``/health`` said 503 until then. ``--tiny`` is a 5-second run
with 20 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import signal
import ssl
import sys
import tempfile
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, read_labeled
from data.corpora import sentiment_sentences
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask
from nlpkit_generation.data import LanguageModelingData
from nlpkit_generation.task import CausalLMTask
from nlpkit_pretraining.contrastive import ContrastiveTask
from nlpkit_pretraining.pairs import SentencePairsData

from nlpkit import CausalTransformerEncoder, GRUEncoder, TokenizerOptions
from nlpkit.deploy.limits import ServerLimits
from nlpkit.testing import ServerProcess, fit_tiny

LIMITS = ServerLimits()


def train_models(texts: list[str], labels: list[str], directory: Path) -> dict[str, Path]:
    """The three served checkpoints, each trained for a few steps (their speed, not their quality, is measured)."""
    (directory / "train.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(texts, labels, strict=True))
    )
    (directory / "text.txt").write_text("\n".join(texts) + "\n")
    (directory / "pairs.jsonl").write_text("".join(json.dumps({"text_a": t, "text_b": t}) + "\n" for t in texts))
    tokenizer = TokenizerOptions(vocab_size=2000)
    gru = partial(GRUEncoder, embedding_dim=64, hidden_size=64, bidirectional=True)
    decoder = partial(CausalTransformerEncoder, d_model=128, num_heads=4, num_layers=2, max_length=1024)
    runs = {
        "classifier": (TextClassificationTask(encoder=gru), ClassificationData, "train.jsonl"),
        "language-model": (CausalLMTask(encoder=decoder), LanguageModelingData, "text.txt"),
        "embedder": (ContrastiveTask(encoder=gru), SentencePairsData, "pairs.jsonl"),
    }
    paths = {}
    for name, (task, data, train) in runs.items():
        torch.manual_seed(0)
        module = data(train_path=str(directory / train), batch_size=32, tokenizer=tokenizer)
        paths[name] = directory / f"{name}.ckpt"
        fit_tiny(task, module, max_steps=30, limit_val_batches=0).save_checkpoint(paths[name])
    return paths


#: one TLS context for every client (the servers speak plain HTTP): building one per client took 18 ms each, which
#: stalled the driver for seconds as 200 clients started
TLS = ssl.create_default_context()


def http_client(timeout: float) -> httpx.AsyncClient:
    """One user's HTTP client: its own connections, ``timeout`` seconds per request."""
    return httpx.AsyncClient(timeout=timeout, verify=TLS)


class Tally:
    """Every answer by kind: latencies of the answered, refusals, 5xx and failures of well-formed requests."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self.failures: list[str] = []  # what the first few 5xx and failed requests met

    def record(
        self, kind: str, status: int | None, seconds: float, retry_after: bool, well_formed: bool, detail: str = ""
    ) -> None:
        """File one request's outcome (``status`` None: no answer came; 0: the port was closed), and ``detail`` of
        a failure."""
        if status == 0:
            outcome = "unreachable"  # not accepted: what a client meets once a stopped server has closed its port
        elif status is not None and status < 300:
            self.latencies[kind].append(seconds)
            outcome = "answered"
        elif status in (429, 503) and retry_after:
            outcome = "refused"
        elif status is not None and status >= 500:
            outcome = "5xx"
        elif not well_formed:  # the 4xx a bad request should get, or its connection closed on it mid-body
            outcome = "rejected" if status is not None else "cut_off"
        else:
            outcome = "failed"  # a well-formed request with a 4xx, or no answer
        self.counts[f"{kind}/{outcome}"] += 1
        if outcome in ("5xx", "failed") and len(self.failures) < 5:
            self.failures.append(f"{kind}: {status} {detail}")


async def timed(client: httpx.AsyncClient, tally: Tally, kind: str, well_formed: bool, **request: Any) -> None:
    """Send one request and file its outcome."""
    start, detail = time.perf_counter(), ""
    try:
        response = await client.request("POST", **request)
        status, retry, detail = response.status_code, "retry-after" in response.headers, response.text[:200]
    except httpx.ConnectError:
        status, retry = 0, False
    except httpx.HTTPError as error:
        status, retry, detail = None, False, f"{type(error).__name__}: {error}"
    tally.record(kind, status, time.perf_counter() - start, retry, well_formed, detail)


async def streamed(client: httpx.AsyncClient, tally: Tally, kind: str, url: str, prompt: str, pause: float) -> None:
    """A streamed ``/generate`` read with ``pause`` seconds between events (a slow reader), or left after the first
    event (``pause`` < 0: a client that goes away); one read whole must end with its ``done`` event."""
    body = {"inputs": [prompt], "stream": True, "options": {"max_new_tokens": 32}}
    start, status, retry, detail = time.perf_counter(), None, False, ""
    try:
        async with client.stream("POST", url, json=body) as response:
            status, retry = response.status_code, "retry-after" in response.headers
            lines = []
            async for line in response.aiter_lines():
                lines.append(line)
                if pause < 0:
                    break
                await asyncio.sleep(pause)
            if status == 200 and pause >= 0 and "event: done" not in lines:
                status, detail = None, f"the stream ended without its done event: {lines[-3:]}"
    except httpx.ConnectError:
        status = 0
    except httpx.HTTPError as error:
        status, detail = None, f"{type(error).__name__}: {error}"
    tally.record(kind, status, time.perf_counter() - start, retry, True, detail)


async def chunked_oversize(url: str, tally: Tally) -> None:
    """A chunked body that passes ``--max_body_bytes`` and never ends: it must be refused with 413 mid-body."""

    async def body() -> Any:
        piece = b'{"inputs": ["' + b"a" * 65536
        for _ in range(10 * LIMITS.max_body_bytes // len(piece)):
            yield piece
            await asyncio.sleep(0)

    async with http_client(30) as client:
        await timed(client, tally, "chunked_oversize", False, url=url, content=body())


def actions(urls: dict[str, str], texts: list[str]) -> list[tuple[float, Any]]:
    """What an ordinary client does, with its weight: mostly small well-formed requests, some faults."""
    oversize = {"inputs": ["a" * 1000] * (LIMITS.max_body_bytes // 1000 + 10)}
    return [
        (40, lambda c, t, r: timed(c, t, "predict_small", True, url=urls["classifier"] + "/predict",
                                   json={"inputs": [r.choice(texts)]})),
        (10, lambda c, t, r: timed(c, t, "predict_batch", True, url=urls["classifier"] + "/predict",
                                   json={"inputs": r.sample(texts, 16)})),
        (15, lambda c, t, r: timed(c, t, "embed", True, url=urls["embedder"] + "/embed",
                                   json={"inputs": r.sample(texts, 4)})),
        (10, lambda c, t, r: timed(c, t, "generate", True, url=urls["language-model"] + "/generate",
                                   json={"inputs": [r.choice(texts)[:80]], "options": {"max_new_tokens": 16}})),
        (8, lambda c, t, r: streamed(c, t, "generate_stream", urls["language-model"] + "/generate",
                                     r.choice(texts)[:80], 0.0)),
        (3, lambda c, t, r: streamed(c, t, "stream_slow_reader", urls["language-model"] + "/generate",
                                     r.choice(texts)[:80], 0.2)),
        (3, lambda c, t, r: streamed(c, t, "stream_disconnect", urls["language-model"] + "/generate",
                                     r.choice(texts)[:80], -1)),
        (4, lambda c, t, r: timed(c, t, "malformed_json", False, url=urls["classifier"] + "/predict",
                                  content=b'{"inputs": ["unterminated')),
        (2, lambda c, t, r: timed(c, t, "oversize", False, url=urls["classifier"] + "/predict", json=oversize)),
        (1, lambda c, t, r: chunked_oversize(urls["classifier"] + "/predict", t)),
    ]  # fmt: skip


async def client_loop(
    urls: dict[str, str], texts: list[str], tally: Tally, until: float, seed: int, think_s: float
) -> None:
    """One ordinary client: weighted random actions until ``until``, each after a pause of 0.5 to 1.5 times
    ``think_s`` (a user's think time, as locust's ``between``; 0: back to back)."""
    rng = random.Random(seed)
    choices = actions(urls, texts)
    weights = [weight for weight, _ in choices]
    async with http_client(60) as client:
        while time.perf_counter() < until:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
            ((_, action),) = rng.choices(choices, weights)
            await action(client, tally, rng)


async def costly_loop(urls: dict[str, str], texts: list[str], tally: Tally, until: float) -> None:
    """The client that sends the costliest requests the limits allow, one after the other."""
    rng = random.Random(1)
    per_input = LIMITS.max_text_chars // 4
    count = min(LIMITS.max_inputs, (LIMITS.max_body_bytes - 1000) // (per_input + 4))
    heavy = {"inputs": [(" ".join(rng.sample(texts, 60)))[:per_input] for _ in range(count)]}
    beams = {
        "strategy": "beam",
        "num_beams": LIMITS.max_beams,
        "max_new_tokens": LIMITS.max_new_tokens,
        "num_return_sequences": LIMITS.max_return_sequences,
        "min_new_tokens": LIMITS.max_new_tokens,
    }
    async with http_client(120) as client:
        while time.perf_counter() < until:
            await timed(client, tally, "costly_predict", True, url=urls["classifier"] + "/predict", json=heavy)
            await timed(client, tally, "costly_generate", True, url=urls["language-model"] + "/generate",
                        json={"inputs": [rng.choice(texts)[:2000]], "options": beams})  # fmt: skip


async def unloaded_p99(url: str, texts: list[str], requests: int) -> float:
    """p99 latency of small ``/predict`` requests sent one at a time to an idle server."""
    tally = Tally()
    async with http_client(60) as client:
        for text in texts[:requests]:
            await timed(client, tally, "predict_small", True, url=url + "/predict", json={"inputs": [text]})
    return percentile(tally.latencies["predict_small"], 99)


async def watch_shutdown(server: ServerProcess, url: str) -> dict[str, Any]:
    """SIGTERM the server, then poll ``/health`` until the port closes: what it said meanwhile."""
    server.process.send_signal(signal.SIGTERM)
    said: list[int] = []
    async with http_client(5) as client:
        while True:
            try:
                said.append((await client.get(url + "/health")).status_code)
            except httpx.HTTPError:
                break
            await asyncio.sleep(0.05)
    code = await asyncio.to_thread(server.process.wait, 60)
    return {"health_statuses": sorted(set(said)), "exit": code, "health_503_until_closed": set(said) <= {503}}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values`` (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def load_run(
    servers: dict[str, ServerProcess], texts: list[str], clients: int, seconds: float, think_s: float
) -> None:
    """The unloaded reference, the load with faults and the costly client, then SIGTERM under load: emit it all."""
    urls = {name: f"http://127.0.0.1:{server.port}" for name, server in servers.items()}
    reference = await unloaded_p99(urls["classifier"], texts, 200)
    tally = Tally()  # a warm-up of every kind of request, the costly ones too: memory grows from there
    warm = time.perf_counter() + min(10.0, seconds / 4)
    await asyncio.gather(
        costly_loop(urls, texts, tally, warm), *(client_loop(urls, texts, tally, warm, 1000 + i, 0.0) for i in range(8))
    )
    memory = {name: rss_mib(server.process.pid) for name, server in servers.items()}
    tally = Tally()
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(
        costly_loop(urls, texts, tally, until),
        *(client_loop(urls, texts, tally, until, i, think_s) for i in range(clients)),
    )
    elapsed = time.perf_counter() - start
    grown = {name: rss_mib(server.process.pid) / memory[name] - 1 for name, server in servers.items()}
    config = {"clients": clients + 1, "seconds": round(elapsed, 1), "think_s": think_s}
    config["threads"] = torch.get_num_threads()
    small = tally.latencies["predict_small"]
    emit("serve_load", "predict_small_p99_s", "s", percentile(small, 99), reference,
         "small /predict p99 on the idle server", False, **config)  # fmt: skip
    kinds = sorted({key.split("/")[0] for key in tally.counts})
    for kind in kinds:
        latencies = tally.latencies[kind]
        counts = {outcome: tally.counts[f"{kind}/{outcome}"] for outcome in
                  ("answered", "refused", "rejected", "cut_off", "5xx", "failed", "unreachable")}  # fmt: skip
        emit(
            "serve_load",
            "requests_per_s",
            "requests/s",
            sum(counts.values()) / elapsed,
            kind=kind,
            **counts,
            p50_s=round(percentile(latencies, 50), 4),
            p99_s=round(percentile(latencies, 99), 4),
            **config,
        )
    failures = sum(tally.counts[f"{kind}/{o}"] for kind in kinds for o in ("5xx", "failed", "unreachable"))
    emit("serve_load", "server_errors_and_failed_requests", "requests", failures, higher_is_better=False,
         failures=tally.failures, **config)  # fmt: skip
    for name, growth in grown.items():
        emit("serve_load", "rss_growth", "fraction", growth, higher_is_better=False, server=name,
             rss_mib=round(memory[name], 1), **config)  # fmt: skip
    await shutdown_under_load(servers, urls, texts, clients, think_s)


async def shutdown_under_load(
    servers: dict[str, ServerProcess], urls: dict[str, str], texts: list[str], clients: int, think_s: float
) -> None:
    """SIGTERM every server while the clients go on: accepted requests must be answered, /health 503 until the port
    closes."""
    tally = Tally()
    until = time.perf_counter() + 60
    clients = [asyncio.create_task(client_loop(urls, texts, tally, until, 500 + i, think_s)) for i in range(clients)]
    await asyncio.sleep(1.0)
    watched = await asyncio.gather(*(watch_shutdown(server, urls[name]) for name, server in servers.items()))
    for task in clients:
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    lost = sum(count for key, count in tally.counts.items() if key.endswith(("/5xx", "/failed")))
    outcomes = defaultdict(int)
    for key, count in tally.counts.items():
        outcomes[key.split("/")[1]] += count
    emit("serve_load", "sigterm_lost_requests", "requests", lost, higher_is_better=False, **outcomes,
         failures=tally.failures, servers={name: {**seen, "exit": seen["exit"] == -signal.SIGTERM} for name, seen in
                  zip(servers, watched, strict=True)})  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Train the three models, serve them, load them; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a 5-second run with 20 clients")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think_s", type=float, default=1.0, help="each client's mean pause between requests")
    args = parser.parse_args(argv)
    clients, seconds = (20, 5.0) if args.tiny else (args.clients, args.seconds)
    rows = read_labeled(sentiment_sentences()["train"])
    texts, labels = [t for t, _ in rows], [y for _, y in rows]
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-serve-load-"))
    checkpoints = train_models(texts[:2000], labels[:2000], directory)
    servers = {name: ServerProcess(path) for name, path in checkpoints.items()}
    gc.freeze()  # the driver's own full collections would stall every client at once, as the servers' did
    try:
        asyncio.run(load_run(servers, texts, clients, seconds, args.think_s))
    finally:
        for server in servers.values():
            if server.process.poll() is None:
                server.process.kill()


if __name__ == "__main__":
    main()
