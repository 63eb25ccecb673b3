"""A client of a gateway's chat model, shared by the gateway and canary live tests."""

from __future__ import annotations

import threading

import httpx


class ClientLoop(threading.Thread):
    """Chat completions through the gateway on `port`, one every `pause` seconds, on one
    keep-alive connection, as an application sends them. A request that meets a reset on its
    idle kept-alive connection before any answer (the old worker closing it just as the request
    goes out after a HUP: HTTP/1.1's race, RFC 9112 9.3.1) is sent again once, as the OpenAI
    SDK does by default, and counted in `retried`; every other failure, or a second one, is
    kept (the finding). Answers are counted per backend (LiteLLM's api-base header).

    `pause`: the loop must leave the 2-core box's CPU to the CLI and to a restarting vLLM.
    Back to back (~20 a second through LiteLLM into vLLM) it starved a server's restart for
    minutes, and in CI the CLI calls between two rollbacks took 110 s."""

    def __init__(self, port: int, key: str, pause: float, max_tokens: int = 2,
                 label: str = "loop") -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.headers = {"Authorization": f"Bearer {key}"}
        self.pause, self.max_tokens, self.label = pause, max_tokens, label
        self.done = threading.Event()
        self.answered = 0
        self.retried = 0
        self.backends: dict[str, int] = {}
        self.failures: list[str] = []

    def send(self, c: httpx.Client) -> httpx.Response:
        body = {"model": "chat", "max_tokens": self.max_tokens,
                "messages": [{"role": "user", "content": f"{self.label} {self.answered}"}]}
        try:
            return c.post(self.url, headers=self.headers, json=body)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            self.retried += 1  # reset before any answer: the idle connection was closing
            return c.post(self.url, headers=self.headers, json=body)

    def run(self) -> None:
        with httpx.Client(timeout=120) as c:
            while not self.done.wait(self.pause):
                try:
                    r = self.send(c)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if r.status_code != 200:
                    self.failures.append(f"HTTP {r.status_code}: {r.text[:200]}")
                    continue
                base = r.headers.get("x-litellm-model-api-base", "?")
                self.backends[base] = self.backends.get(base, 0) + 1
                self.answered += 1

    def stop(self) -> None:
        self.done.set()
        self.join(120)
