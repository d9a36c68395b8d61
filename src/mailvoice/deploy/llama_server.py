"""Start, query and stop a ``llama-server`` process (llama.cpp's HTTP server).

Used by ``mailvoice serve`` (one server holding every user's LoRA), by the test Ollama server
(Ollama ≥ 0.30 runs each model in such a process too) and by the equivalence tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

from ..errors import MailvoiceError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LlamaServer:
    """``with LlamaServer(bin, model, loras=[…]) as srv: srv.complete(...)``."""

    def __init__(self, binary: Path, model: Path, *, loras: list[Path] = (), ctx: int = 2048,
                 threads: int | None = None, host: str = "127.0.0.1", port: int | None = None,
                 extra: list[str] = (), log_path: Path | None = None):
        self.binary, self.model, self.loras = Path(binary), Path(model), [Path(p) for p in loras]
        self.host, self.port = host, port or free_port(host)
        self.ctx, self.threads, self.extra = ctx, threads or min(2, os.cpu_count() or 1), list(extra)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [str(self.binary), "-m", str(self.model), "--host", self.host, "--port", str(self.port),
               "-c", str(self.ctx), "-t", str(self.threads), "-np", "1", "--no-webui"]
        for lora in self.loras:
            cmd += ["--lora", str(lora)]
        if self.loras:
            cmd.append("--lora-init-without-apply")  # scale per request only; never a silent default
        return cmd + self.extra

    def start(self, timeout: float = 120.0) -> LlamaServer:
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MailvoiceError(f"llama-server exited with code {self.proc.returncode} while loading {self.model.name}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise MailvoiceError(f"llama-server did not become ready within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------------------------ calls
    def post(self, path: str, body: dict, timeout: float = 300.0) -> dict:
        try:
            r = httpx.post(self.url + path, json=body, timeout=timeout)
        except httpx.HTTPError as e:
            raise MailvoiceError(f"llama-server {path} failed: {type(e).__name__}") from None
        if r.status_code >= 400:
            try:
                msg = r.json().get("error", {})
                msg = msg.get("message", str(msg)) if isinstance(msg, dict) else str(msg)
            except ValueError:
                msg = f"HTTP {r.status_code}"
            raise MailvoiceError(f"llama-server {path}: {msg[:300]}")
        return r.json()

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        return self.post("/tokenize", {"content": text, "add_special": add_special, "parse_special": parse_special})["tokens"]

    def complete(self, prompt, *, n_predict: int = 64, lora: list[dict] | None = None, stop: list[str] = (),
                 temperature: float = 0.0, options: dict | None = None) -> dict:
        """/completion; greedy by default. ``prompt`` is text or a list of token ids."""
        body = {
            "prompt": prompt,
            "n_predict": n_predict,
            "temperature": temperature,
            "stop": list(stop),
            "return_tokens": True,
            "cache_prompt": False,  # never reuse another adapter's KV cache
        }
        options = dict(options or {})
        if temperature == 0.0:  # greedy, after the repeat penalty when one is asked for (as Ollama does)
            penalised = float(options.get("repeat_penalty", 1.0)) != 1.0
            body.update({"top_k": 1, "samplers": ["penalties", "top_k"] if penalised else ["top_k"]})
            options.pop("top_k", None)
        if lora is not None:
            body["lora"] = lora
        body.update(options)
        return self.post("/completion", body)
