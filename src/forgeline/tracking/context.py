"""What a run records about where it ran: code version, interpreter, packages, command."""

from __future__ import annotations

import functools
import getpass
import json
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from forgeline.entities import GIT_COMMIT, GIT_DIRTY

__all__ = ["COMMAND", "run_context_tags"]

COMMAND = "forgeline.command"
_KEY_PACKAGES = ("forgeline", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost",
                 "optuna", "torch", "onnxruntime")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _source_dir() -> Path:
    main = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if main is not None and main.is_file():
        return main.resolve().parent
    return Path.cwd()


@functools.cache
def run_context_tags() -> dict[str, str]:
    """Computed once per process: the git commit and dirty flag when inside a repository."""
    from importlib import metadata  # only when a run starts: keeps `forgeline --help` fast

    tags = {
        "forgeline.python": platform.python_version(),
        COMMAND: shlex.join(sys.argv) if sys.argv else "",
        "forgeline.user": getpass.getuser(),
        "forgeline.host": socket.gethostname(),
    }
    versions = {}
    for name in _KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    tags["forgeline.packages"] = json.dumps(versions, sort_keys=True)
    where = _source_dir()
    commit = _git(["rev-parse", "HEAD"], where)
    if commit:
        tags[GIT_COMMIT] = commit
        status = _git(["status", "--porcelain", "--untracked-files=no"], where)
        tags[GIT_DIRTY] = "true" if status else "false"
    return tags
