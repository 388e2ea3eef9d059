"""``forgeline server`` and ``forgeline server token ...`` as a user runs them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from forgeline.errors import Unauthorized
from forgeline.store.http.store import HttpStore

FORGELINE = Path(sys.executable).with_name("forgeline")
STARTED = re.compile(r"^Forgeline server on http://0\.0\.0\.0:(\d+) · store (\S+) · "
                     r"artifacts (\S+) · auth on · 2 workers$")


def _forgeline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FORGELINE), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


def test_tokens_then_a_server_with_auth_on_by_default(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'team' / 'forgeline.db'}"
    created = _forgeline("server", "token", "create", "--role", "admin", "--name", "root",
                         "--store", uri, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("flt_") and "\n" not in secret
    assert "shown only now" in created.stderr
    again = _forgeline("--store", uri, "server", "token", "create", "--name", "root",
                       cwd=tmp_path)
    assert again.returncode == 4 and again.stderr.startswith("error: Token 'root'")
    server = subprocess.Popen(
        [str(FORGELINE), "--store", uri, "server", "--host", "0.0.0.0", "--port", "0",
         "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, env={**os.environ, "COLUMNS": "300"})
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        match = STARTED.match(line)
        assert match, line
        assert match.group(2) == uri
        assert match.group(3) == str(tmp_path / "team" / "artifacts")
        url = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/api/forgeline/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        admin = HttpStore(url, token=secret)
        exp = admin.create_experiment("fraud")
        with pytest.raises(Unauthorized):
            HttpStore(url, token="").list_experiments()
        for _ in range(4):  # whichever worker answers
            assert HttpStore(url, token=secret).list_experiments() == [exp]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    assert server.returncode == 0, server.stderr.read() if server.stderr else ""
    listed = _forgeline("--store", uri, "server", "token", "list", cwd=tmp_path)
    assert "root" in listed.stdout and "admin" in listed.stdout and secret not in listed.stdout
    assert _forgeline("--store", uri, "server", "token", "delete", "root",
                      cwd=tmp_path).returncode == 0
    gone = _forgeline("--store", uri, "server", "token", "delete", "root", cwd=tmp_path)
    assert gone.returncode == 3 and gone.stderr.startswith("error: ")


def test_refusals_are_one_line(tmp_path: Path) -> None:
    busy = _forgeline("server", "--store", "http://127.0.0.1:1", cwd=tmp_path)
    assert busy.returncode == 2
    assert busy.stderr.startswith("error: The team server needs a database store")
    with subprocess.Popen([sys.executable, "-c", "import socket, time; s = socket.socket(); "
                           "s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], "
                           "flush=True); time.sleep(60)"], stdout=subprocess.PIPE,
                          text=True) as holder:
        assert holder.stdout is not None
        port = holder.stdout.readline().strip()
        taken = _forgeline("server", "--port", port, cwd=tmp_path)
        holder.kill()
    assert taken.returncode == 2, taken.stderr
    assert taken.stderr.startswith(f"error: Cannot listen on 127.0.0.1:{port}")
    assert taken.stderr.count("\n") == 1


def test_ui_serves_the_local_store_on_loopback_without_tokens(tmp_path: Path) -> None:
    """`forgeline ui` over the default local store: the web UI on 127.0.0.1, auth off."""
    home = tmp_path / "home"
    env = {**os.environ, "COLUMNS": "300", "FORGELINE_HOME": str(home),
           "BROWSER": "true"}  # were a browser opened, it would be this no-op command
    logged = subprocess.run([sys.executable, "-c", "import forgeline as fl\n"
                             "with fl.start_run(experiment='churn', name='first') as r:\n"
                             "    r.log_metric('auc', 0.9)"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert logged.returncode == 0, logged.stderr
    server = subprocess.Popen([str(FORGELINE), "ui", "--port", "0", "--no-browser"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path, env=env)
    try:
        assert server.stdout is not None
        assert " · auth off · 1 worker" in server.stdout.readline()
        ui = server.stdout.readline().strip()
        assert re.fullmatch(r"Web UI: http://127\.0\.0\.1:\d+/ui/", ui), ui
        url = ui.removeprefix("Web UI: ")
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(url)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert page.status_code == 200 and "churn" in page.text
        runs = httpx.get(url + "experiments/1")
        assert runs.status_code == 200 and "first" in runs.text
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    assert server.returncode == 0, server.stderr.read() if server.stderr else ""
