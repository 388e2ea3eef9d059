"""The LLM answer cache: one SQLite file, one row per (model, prompt, input) hash.

Invariants:

- An answer is written (and committed) the moment it arrives, from whichever worker thread
  got it, so a run that is interrupted, or whose later rows fail, loses nothing it paid for:
  the next run asks only for the rows still missing.
- What is kept is the endpoint's raw answer (the first token's top log-probabilities, or
  the chat message's text) with its token counts, not the label parsed from it: an answer
  that is not one of the labels is cached too, and reading it again gives the same verdict.
- WAL journal and a busy timeout: two processes labelling with one cache at once both
  write; SQLite serialises their commits.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeline.errors import StoreError

__all__ = ["AnswerCache", "CachedAnswer", "cache_key"]

CACHE_FILE = "llm-answers.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    answer TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(model: str, prompt: str, text: str, request: dict[str, Any]) -> str:
    """sha256 of the model, the prompt (its digest), the row's text and the request's
    parameters that change the answer (mode, top log-probabilities, temperature)."""
    payload = json.dumps([model, prompt, text, request], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """An endpoint's answer as kept: JSON-able ``answer`` and its token counts."""

    answer: Any
    prompt_tokens: int = 0
    completion_tokens: int = 0


class AnswerCache:
    """A thread-safe SQLite cache of LLM answers; open it on a file, or ``":memory:"``."""

    def __init__(self, path: Path | str) -> None:
        self.path = path if str(path) == ":memory:" else Path(path)
        try:
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=30.0,
                                         check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"Cannot open the LLM answer cache {self.path}: {e}.",
                             hint="Check the cache folder (FORGELINE_CACHE_DIR) is writable; "
                                  "a corrupt cache file can be deleted.") from None
        self._lock = threading.Lock()

    @classmethod
    def in_folder(cls, folder: Path) -> AnswerCache:
        """The cache file in ``folder`` (e.g. ``Settings.resolved_cache_dir``)."""
        return cls(Path(folder) / CACHE_FILE)

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT answer, prompt_tokens, completion_tokens FROM answers WHERE key = ?",
                (key,)).fetchone()
        if row is None:
            return None
        return CachedAnswer(json.loads(row[0]), int(row[1]), int(row[2]))

    def put(self, key: str, model: str, answer: CachedAnswer) -> None:
        """Keep ``answer`` now (committed before this returns)."""
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                    (key, model, json.dumps(answer.answer, ensure_ascii=False),
                     answer.prompt_tokens, answer.completion_tokens, time.time()))
        except sqlite3.Error as e:
            raise StoreError(f"Cannot write to the LLM answer cache {self.path}: {e}.",
                             hint="Check the disk has room and the file is writable.") from None

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
