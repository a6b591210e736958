"""``nlpkit serve`` over real HTTP: a server in a subprocess on a free port, micro-batching 100 concurrent clients,
bad requests answered with 4xx naming the field, streamed generation, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask
from nlpkit_generation.data import LanguageModelingData
from nlpkit_generation.task import CausalLMTask

import nlpkit
from nlpkit.deploy.batching import MicroBatcher
from nlpkit.deploy.export import export
from nlpkit.deploy.limits import ServerLimits
from nlpkit.deploy.requests import RequestError
from nlpkit.models.encoders.rnn import GRUEncoder
from nlpkit.models.encoders.transformer import CausalTransformerEncoder
from nlpkit.models.tokenizers import TokenizerOptions
from nlpkit.testing import ServerProcess, fit_tiny, sentiment_corpus, story_corpus, write_sentiment_files

TEXTS = [text for text, _ in sentiment_corpus(100, seed=7)]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> tuple[Path, Path]:
    """A briefly trained GRU classifier's checkpoint and its ONNX export."""
    directory = tmp_path_factory.mktemp("serve")
    files = write_sentiment_files(directory / "data", train=120, val=40)
    task = TextClassificationTask(encoder=partial(GRUEncoder, embedding_dim=16, hidden_size=16, bidirectional=True))
    data = ClassificationData(
        train_path=str(files["train"]), val_path=str(files["val"]), tokenizer=TokenizerOptions(vocab_size=80)
    )
    fit_tiny(task, data, max_steps=10).save_checkpoint(directory / "model.ckpt")
    export(task, directory / "onnx")
    return directory / "model.ckpt", directory / "onnx"


@pytest.fixture(scope="module")
def server(classifier) -> Iterator[ServerProcess]:
    """The ONNX export served; requests wait up to 200 ms for others to batch with."""
    server = ServerProcess(classifier[1], "--max_wait_ms", "200", "--max_inputs", "50", "--max_body_bytes", "20000")
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()


def assert_same_predictions(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """The same labels, and probabilities within float error (batch composition changes the sums' order)."""
    assert [p["label"] for p in got] == [p["label"] for p in want]
    for mine, theirs in zip(got, want, strict=True):
        assert mine["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-6)


def test_predictions_over_http_equal_the_loaded_model(server, classifier) -> None:
    status, body = server.post("/predict", {"inputs": TEXTS[:5]})
    assert status == 200
    assert_same_predictions(body["predictions"], nlpkit.load(classifier[1]).predict(TEXTS[:5]))


def test_100_concurrent_clients_are_micro_batched_and_each_gets_its_own_answer(server, classifier) -> None:
    labels = [result["label"] for result in nlpkit.load(classifier[0]).predict(TEXTS)]
    batches_before = server.get("/metadata")[1]["batches"]["run"]
    with ThreadPoolExecutor(max_workers=100) as clients:
        answers = list(clients.map(lambda text: server.post("/predict", {"inputs": [text]}), TEXTS))
    assert [status for status, _ in answers] == [200] * 100
    assert [body["predictions"][0]["label"] for _, body in answers] == labels
    batches = server.get("/metadata")[1]["batches"]["run"] - batches_before
    assert batches < 50, f"{batches} model batches for 100 concurrent requests: not micro-batched"


def test_a_chunked_body_over_the_limit_is_refused_before_it_ends(server) -> None:
    """A chunked body declares no length: the server keeps none of it past ``--max_body_bytes``, stops reading at
    four times that and answers 413 while the client is still sending, instead of reading the body whole."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b'{"inputs": ["' + b"a" * 30_000  # the fixture's limit is 20,000 bytes, and the body never ends
        for _ in range(3):  # past four times the limit, the server stops reading it
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = connection.recv(4096)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"\r\nconnection: close\r\n" in response.lower()  # the unread rest of the body closes the connection
    assert server.get("/health")[0] == 200


def test_a_body_over_the_limit_is_read_and_dropped_so_the_connection_lives_up_to_four_times_it(server) -> None:
    """A 413 of a body up to four times ``--max_body_bytes`` comes after the body is read (and dropped), so the
    client reads it and its connection serves the next request; one declaring more is refused before it is sent,
    with ``Connection: close``, so the client does not send its next request on a closing socket."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for body, status in [
            (b'{"inputs": []}', 422),
            (json.dumps({"inputs": ["a" * 30000]}), 413),
            (b'{"inputs": ["a fine film"]}', 200),
        ]:
            connection.request("POST", "/predict", body)
            response = connection.getresponse()
            response.read()
            assert (response.status, response.getheader("connection")) == (status, None)
    finally:
        connection.close()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
        response = raw.recv(4096)
    assert response.startswith(b"HTTP/1.1 413") and b"\r\nconnection: close\r\n" in response.lower(), response[:300]


@pytest.mark.parametrize(("keep_alive_s", "kept"), [(None, True), ("0.5", False)])
def test_an_idle_connection_stays_open_for_keep_alive_s(classifier, keep_alive_s, kept) -> None:
    """By default an idle connection outlives a client's own idle timeout (httpx closes its own after 5 s), so the
    client, not the server, closes it; ``--keep_alive_s`` sets how long."""
    server = ServerProcess(classifier[1], *(["--keep_alive_s", keep_alive_s] if keep_alive_s else []))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for attempt in range(2):
            if attempt:
                time.sleep(1.0)
            try:
                connection.request("POST", "/predict", b'{"inputs": ["a fine film"]}')
                response = connection.getresponse()
                response.read()
                status = response.status
            except (http.client.RemoteDisconnected, ConnectionError):
                status = None
            assert status == (200 if attempt == 0 or kept else None)
    finally:
        connection.close()
        server.stop()


def test_a_full_queue_refuses_with_503_and_retry_after(classifier) -> None:
    """With ``max_queued`` examples waiting (the model thread busy), another request is refused at once instead of
    queued; once the queue drains, requests are served again."""
    task = nlpkit.load(classifier[0])
    batcher = MicroBatcher(task, ServerLimits(max_queued=3))

    async def overload() -> tuple[Any, list[Any]]:
        waiting = asyncio.create_task(batcher.run_examples(task.encode_many(TEXTS[:3])))  # nothing runs them yet
        await asyncio.sleep(0)
        with pytest.raises(RequestError) as refused:
            await batcher.run_examples(task.encode_many(TEXTS[3:4]))
        runner = asyncio.create_task(batcher.run())
        try:
            return refused.value, [await waiting, await batcher.run_examples(task.encode_many(TEXTS[3:4]))]
        finally:
            runner.cancel()

    refusal, answers = asyncio.run(overload())
    assert (refusal.status, refusal.retry_after) == (503, 1) and "at capacity" in str(refusal)
    assert answers == [task.predict(TEXTS[:3]), task.predict(TEXTS[3:4])]


def test_requests_beyond_max_connections_get_503_with_retry_after_and_health_still_answers(classifier) -> None:
    """Two requests hold the server (their bodies never arrive); a third is refused at once, over HTTP, with
    ``Retry-After``, while ``/health`` still answers; once they go away, requests are served again."""
    server = ServerProcess(classifier[1], "--max_connections", "2")
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
    try:
        for connection in held:
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as third:
            third.sendall(b'POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 15\r\n\r\n{"inputs":["a"]}')
            response = third.recv(4096)
        head = response.split(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 503") and b"\r\nretry-after: 1" in head, response[:300]
        assert server.get("/health") == (200, {"status": "ok"})
        for connection in held:
            connection.close()
        time.sleep(0.3)
        status, body = server.post("/predict", {"inputs": TEXTS[:2]})
        assert status == 200 and len(body["predictions"]) == 2
    finally:
        server.stop()


def test_a_small_request_is_answered_between_the_model_batches_of_a_large_one(classifier) -> None:
    """A request of 40 examples runs a model batch (4 examples) at a time; one of 1 example sent just after it is
    answered in the first round, not after all ten of the large one's batches; both equal the model's own."""
    task = nlpkit.load(classifier[0])
    batcher = MicroBatcher(task, ServerLimits(max_batch=4, max_wait_ms=0))
    large, small = (TEXTS * 10)[:40], TEXTS[:1]
    answered: list[tuple[str, int]] = []

    async def ask(name: str, texts: list[str]) -> list[Any]:
        results = await batcher.run_examples(task.encode_many(texts))
        answered.append((name, batcher.batches))
        return results

    async def both() -> list[Any]:
        asks = [asyncio.create_task(ask("large", large)), asyncio.create_task(ask("small", small))]
        await asyncio.sleep(0)  # both wait, the large one first
        runner = asyncio.create_task(batcher.run())
        try:
            return await asyncio.gather(*asks)
        finally:
            runner.cancel()

    large_results, small_results = asyncio.run(both())
    # the first round runs 4 + 1 examples in two batches; the large request's other 36 run in nine more
    assert [name for name, _ in answered] == ["small", "large"] and answered[0][1] <= 2 and answered[1][1] == 11
    assert_same_predictions(small_results, task.predict(small))
    assert_same_predictions(large_results, task.predict(large))


def test_a_request_that_fails_its_micro_batch_fails_alone(classifier) -> None:
    """Three concurrent requests share one model batch; the one whose examples make the batch raise gets the error,
    the other two their predictions, equal to the model's own."""
    task = nlpkit.load(classifier[0])
    requests = [["a great film"], ["poison pill"], ["dull and slow", "fine"]]
    poison = task.encode_many(requests[1])[0]["tokens"]

    def predict_unless_poisoned(batch: dict[str, Any]) -> list[Any]:
        if any(row[: len(poison)].tolist() == poison for row in batch["tokens"]):
            raise ValueError("this input breaks the model")
        return task.predict_batch(batch)

    batcher = MicroBatcher(task, ServerLimits(max_wait_ms=200))

    async def serve_three() -> list[Any]:
        runner = asyncio.create_task(batcher.run())
        try:
            asks = [batcher.run_examples(task.encode_many(texts), predict_unless_poisoned) for texts in requests]
            return await asyncio.gather(*asks, return_exceptions=True)
        finally:
            runner.cancel()

    good, failed, other = asyncio.run(serve_three())
    assert batcher.batches == 4  # the three together, which raised, then each alone
    assert isinstance(failed, ValueError) and "breaks the model" in str(failed)
    assert good == task.predict(requests[0]) and other == task.predict(requests[2])


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'{"inputs": ["unclosed"', 400, "the request body is not valid JSON"),
        (b'{"input": ["a"]}', 422, "inputs: Field required"),
        (b'{"inputs": []}', 422, "inputs: List should have at least 1 item"),
        (b'{"inputs": ["fine", 7]}', 422, "inputs.1: an input is a text or an object of the task's fields"),
        (b'{"inputs": [{"txt": "a"}]}', 422, "inputs.0: missing field 'text'"),
        (b'{"inputs": ["a"], "extra": 1}', 422, "extra: Extra inputs are not permitted"),
        (json.dumps({"inputs": ["a"] * 51}).encode(), 422, "inputs: 51 inputs; at most 50 per request"),
        (json.dumps({"inputs": ["a" * 30000]}).encode(), 413, "request body of 30016 bytes; at most 20000"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(server, body, status, error) -> None:
    got_status, got = server.request("/predict", body)
    assert got_status == status
    assert got["error"].startswith(error)


def test_the_server_announces_itself_and_logs_each_request_in_one_line(classifier) -> None:
    server = ServerProcess(classifier[1])
    try:
        server.post("/predict", {"inputs": ["a fine film"]})
        server.request("/predict", b"{not json")
        server.get("/nothing")
    finally:
        server.stop()
    lines = server.stderr().splitlines()
    assert re.search(
        rf"serving text-classification \(OnnxRuntime\) from {re.escape(str(classifier[1]))} at "
        rf"http://127.0.0.1:{server.port}: /predict /health /metadata; Ctrl-C stops$",
        lines[0],
    ), lines[:2]
    requests = [line.split(" ", 2)[2] for line in lines if " ms" in line]  # after the date and time
    assert [request.rsplit(" ", 2)[0] for request in requests] == [
        "GET /health 200", "POST /predict 200", "POST /predict 400", "GET /nothing 404"
    ]  # fmt: skip


def test_metadata_health_and_endpoints_a_classifier_lacks(server) -> None:
    status, metadata = server.get("/metadata")
    assert status == 200
    assert metadata["task"] == "text-classification" and metadata["labels"] == ["neg", "pos"]
    assert metadata["runtime"] == "OnnxRuntime" and "classification" in metadata["plugins"]
    assert metadata["endpoints"] == ["/predict", "/health", "/metadata"]
    assert server.post("/generate", {"inputs": ["a"]})[0] == 404
    assert server.post("/embed", {"inputs": ["a"]})[0] == 404


def test_shutdown_lets_the_request_in_flight_finish(server) -> None:
    """SIGTERM while a request waits in the 200 ms batching window: it is answered, then the server ends."""
    answer: list[tuple[int, Any]] = []
    client = threading.Thread(target=lambda: answer.append(server.post("/predict", {"inputs": TEXTS[:3]})))
    client.start()
    time.sleep(0.05)
    server.stop()
    client.join(timeout=30)
    assert answer and answer[0][0] == 200 and len(answer[0][1]["predictions"]) == 3


def test_after_sigterm_health_says_503_while_requests_are_still_answered_then_the_port_closes(classifier) -> None:
    """While draining, requests are answered with ``Connection: close``, so no client reuses a connection that the
    server is about to close (a request sent on one as it closes would be lost); then the port closes."""
    server = ServerProcess(classifier[1], "--drain_s", "2")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = json.dumps({"inputs": TEXTS[:2]})

    def predict() -> http.client.HTTPResponse:
        connection.request("POST", "/predict", body)
        response = connection.getresponse()
        assert response.status == 200 and len(json.loads(response.read())["predictions"]) == 2
        return response

    try:
        assert predict().getheader("connection") != "close"  # kept alive while serving
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert server.get("/health") == (503, {"error": "shutting down"})
        assert predict().getheader("connection") == "close"  # a load balancer's last requests, on the same socket
        assert server.process.wait(timeout=30) == -signal.SIGTERM, server.stderr()
        with pytest.raises(OSError):  # the port is closed
            server.get("/health")
    finally:
        if server.process.poll() is None:
            server.process.kill()


def test_a_request_on_an_open_connection_as_the_port_closes_is_still_answered(classifier) -> None:
    """When the drain ends the port closes first; a kept-alive connection may still carry a request already on its
    way for a moment (answered with ``Connection: close``), instead of being closed under it."""
    server = ServerProcess(classifier[1], "--drain_s", "0.3")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def predict() -> http.client.HTTPResponse:
        connection.request("POST", "/predict", b'{"inputs": ["a fine film"]}')
        response = connection.getresponse()
        response.read()
        return response

    try:
        assert predict().status == 200
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until a new connection is refused
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except ConnectionRefusedError:
                break
            time.sleep(0.01)
        response = predict()
        assert (response.status, response.getheader("connection")) == (200, "close")
        assert server.process.wait(timeout=30) == -signal.SIGTERM, server.stderr()
    finally:
        connection.close()
        if server.process.poll() is None:
            server.process.kill()


def test_generation_streams_the_same_text_it_returns_whole(tmp_path) -> None:
    stories = tmp_path / "stories.txt"
    stories.write_text("\n".join(story_corpus(80)) + "\n")
    data = LanguageModelingData(train_path=str(stories), batch_size=8, tokenizer=TokenizerOptions(vocab_size=60))
    encoder = partial(CausalTransformerEncoder, d_model=32, num_heads=2, num_layers=1, max_length=64)
    task = CausalLMTask(encoder=encoder)
    fit_tiny(task, data, max_steps=3, limit_val_batches=0).save_checkpoint(tmp_path / "lm.ckpt")
    server = ServerProcess(tmp_path / "lm.ckpt")
    try:
        assert "/generate" in server.get("/metadata")[1]["endpoints"]
        options = {"max_new_tokens": 6}
        status, whole = server.post("/generate", {"inputs": ["the baker", "a young fox"], "options": options})
        assert status == 200 and len(whole["generations"]) == 2
        prompts = ["the baker", "a young fox", "the old sailor", "my grandmother", "the quiet girl", "a tired soldier"]
        alone = [server.post("/generate", {"inputs": [p], "options": options})[1]["generations"] for p in prompts]
        batches_before = server.get("/metadata")[1]["batches"]["run"]
        with ThreadPoolExecutor(max_workers=6) as clients:
            together = list(
                clients.map(lambda p: server.post("/generate", {"inputs": [p], "options": options}), prompts)
            )
        batched = [body["generations"][0] for _, body in together]
        assert [g["text"] for g in batched] == [g[0]["text"] for g in alone]  # batched with others: the same text
        assert [g["score"] for g in batched] == pytest.approx([g[0]["score"] for g in alone], abs=1e-4)
        assert server.get("/metadata")[1]["batches"]["run"] - batches_before < len(prompts)
        streamed = {"options": options, "stream": True}
        with ThreadPoolExecutor(max_workers=8) as clients:  # streams decode on the model thread between batches
            answers = list(
                clients.map(
                    lambda p: server.post("/generate", {"inputs": [p], **streamed} if p else {"inputs": prompts}),
                    [*prompts, None],
                )
            )
        for (status, events), own in zip(answers, alone, strict=False):
            assert status == 200 and "event: done" in events
            pieces = [json.loads(line[6:])["text"] for line in events.splitlines() if line.startswith('data: {"text"')]
            assert len(pieces) >= 1 and "".join(pieces) == own[0]["text"]
        assert answers[-1][0] == 200 and len(answers[-1][1]["generations"]) == len(prompts)
        status, error = server.post("/generate", {"inputs": ["a"], "options": {"temprature": 0.5}})
        assert status == 422 and error["error"].startswith("options.temprature: not a generation option")
        status, error = server.post("/generate", {"inputs": ["a"], "options": {"temperature": 0.5}})
        assert status == 422 and "only applies to strategy 'sample'" in error["error"]
        status, error = server.post("/generate", {"inputs": ["a"], "options": {"max_new_tokens": "many"}})
        assert status == 422 and error["error"].startswith("options: ")
        costly = {"strategy": "beam", "num_beams": 4000, "max_new_tokens": 10}  # held the model thread for 18 s
        status, error = server.post("/generate", {"inputs": ["a"], "options": costly})
        assert (status, error["error"]) == (422, "options.num_beams: at most 8 on this server, not 4000")
        status, error = server.post("/generate", {"inputs": ["a"], "options": {"max_new_tokens": 100_000}})
        assert (status, error["error"]) == (422, "options.max_new_tokens: at most 512 on this server, not 100000")
        status, error = server.post("/generate", {"inputs": ["a"], "options": {"max_time": 60}})
        assert (status, error["error"]) == (422, "options.max_time: at most 10.0 on this server, not 60")
    finally:
        server.stop()
    capped = ServerProcess(tmp_path / "lm.ckpt", "--max_decode_s", "1e-9")  # every decoding past its time at once
    try:
        long = {"max_new_tokens": 40, "min_new_tokens": 40}  # no end-of-sequence: 40 tokens unless stopped
        status, body = capped.post("/generate", {"inputs": prompts[:2], "options": long})
        lm = nlpkit.load(tmp_path / "lm.ckpt")
        assert status == 200 and [g["text"] for g in body["generations"]] == [
            g.text for g in lm.generate(prompts[:2], max_new_tokens=1)
        ]  # one step, then past its time
        assert all(len(g.tokens) == 40 for g in lm.generate(prompts[:2], **long))
    finally:
        capped.stop()
