"""The whole lifecycle on the fraud example, for real: ``forgeline demo`` and ``make demo``.

generate → train → serve (a ``forgeline serve --watch`` process) → traffic whose
distribution and fraud pattern drift → monitor (the drift rule fires) → ground-truth labels
by request id → one champion/challenger retraining cycle → the server switches to the
promoted version → a summary of what happened and where its reports are.

The world (``forgeline.examples.fraud``): 150 days of card transactions. The champion is
trained on the first 120 days. Production traffic comes from the last 30: the first days
look like training; from day 126 prices rise, online and mobile take over and a new kind of
fraud, account takeovers on the mobile app, grows until day 134. The champion never saw
it, so it ranks these cases like ordinary purchases; a challenger trained with the labelled
traffic can learn it. Nothing is staged: when the gate keeps the champion, the story says
so and the server keeps answering with it.

Everything lives in one folder (``.forgeline/demo`` by default): the store, the data, the
server's log, the prediction log, the labels and the reports. A run first clears what an
earlier demo wrote there (the folder holds :data:`MARKER`); it refuses a folder that holds
a store or data it did not make, and leaves any other file alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd

from forgeline.errors import ForgelineError, InvalidInput
from forgeline.examples import fraud
from forgeline.examples.fraud import TARGET
from forgeline.util.progress import Progress

if TYPE_CHECKING:
    from forgeline.workflows.retrain import RetrainDecision

__all__ = ["MARKER", "DemoConfig", "DemoProgress", "DemoResult", "Step", "run_demo"]

MARKER = ".forgeline-demo"  # in a folder this module made, and may clear again
# what a run writes in its folder (and clears at the next run, but only there)
_OURS = ("forgeline.db", "forgeline.db-wal", "forgeline.db-shm", "forgeline.db-journal",
         "artifacts", "models", "data", "predictions", "feedback", "reports", "retrain",
         "server.log")
MODEL = "fraud"
_URL = re.compile(r"https?://[\w.\-\[\]:]+:\d+")


@dataclass(frozen=True)
class DemoConfig:
    """The story's size and settings (the defaults take about two minutes on 2 cores).

    Attributes:
        home: the folder for everything.
        store_uri: the store; None: a SQLite file in ``home``.
        train_rows: transactions the champion is trained on.
        requests: production requests sent to the server, one transaction each.
        trials: tuning trials of the champion.
        challenger_trials: tuning trials of the challenger.
        gate_rows: the newest labelled rows on which the gate compares the two models.
        min_labelled: with fewer labelled rows in the gate, no decision is taken.
        fraud_rate: the share of fraud before the drift.
        pattern_shift: how much new fraud the drift brings (``forgeline.examples.fraud``).
        rule: the monitoring rule that starts a retraining cycle.
        concurrency: requests in flight at once.
        watch_interval_s: how often the server looks for a new champion in the registry.
        runtime: the server's runtime: auto, native or onnx.
        seed: the world's random seed.
    """

    home: Path = Path(".forgeline/demo")
    store_uri: str | None = None
    train_rows: int = 20_000
    requests: int = 3_000
    trials: int = 8
    challenger_trials: int = 4
    gate_rows: int = 1_000
    min_labelled: int = 200
    fraud_rate: float = 0.015
    pattern_shift: float = 2.0
    rule: str = "dataset_drift > 0.3"
    concurrency: int = 8
    watch_interval_s: float = 1.0
    runtime: str = "auto"
    seed: int = 7


@dataclass
class Step:
    """One step of the story: what happened (a line, and a short form for the summary)."""

    name: str
    result: str
    short: str
    path: Path | None = None
    seconds: float = 0.0


@dataclass
class DemoResult:
    """What happened, step by step, and the retraining cycle's decision."""

    home: Path | None = None
    store_uri: str = ""
    url: str = ""
    served_version: int | None = None  # the version that answered the traffic
    final_version: int | None = None  # the version the server answered with at the end
    alerts: list[str] = field(default_factory=list)  # monitoring rules that fired
    labels: int = 0  # labels joined to logged predictions
    champion_auc: float | None = None  # the champion's realised ROC AUC on the traffic
    decision: RetrainDecision | None = None
    switches: float | None = None  # the server's model-switch counter at the end
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        """The story's ending in one sentence."""
        d = self.decision
        if d is None:
            return "The story ended before its retraining cycle."
        if d.action == "promoted":
            gain = (d.challenger_score or 0.0) - (d.champion_score or 0.0)
            return (f"The drift fired {', '.join(self.alerts) or 'no alert'}; {MODEL}/"
                    f"{d.challenger} beat {MODEL}/{d.champion} by {gain:+.4f} {d.metric} on "
                    f"the newest labelled traffic and replaced it; the server answers with "
                    f"{MODEL}/{self.final_version}.")
        return f"{MODEL}/{d.champion} stays champion ({d.action}: {d.reason})."


class DemoProgress(Progress):
    """:class:`~forgeline.util.progress.Progress`, told also where the story is."""

    def step(self, number: int, name: str) -> None:
        """Step ``number`` (``name``) starts."""
        self.note(f"{number}. {name}")

    def step_done(self, step: Step) -> None:
        """A step ended well: what happened and where its file is."""
        self.note(f"done: {step.result}" + (f" ({step.path})" if step.path else ""))

    def step_failed(self, name: str) -> None:
        """A step failed; the error follows."""
        self.note(f"the {name.lower()} step failed")


def run_demo(config: DemoConfig = DemoConfig(), progress: DemoProgress | None = None
             ) -> DemoResult:
    """Tell the whole story once; ``progress`` is told each step as it goes.

    Raises:
        InvalidInput: ``config.home`` holds a store that an earlier demo did not make.
        ForgelineError: a step failed.
    """
    progress = progress or DemoProgress()
    # a store of the user's may keep its artifacts in the folder: those stay
    home = _fresh_home(config.home, keep=("artifacts",) if config.store_uri else ())
    store_uri = config.store_uri or f"sqlite:///{home / 'forgeline.db'}"
    # Every part of the story (and the server it starts) finds the store and the home
    # folder the way the CLI does, from the environment.
    with _environment(FORGELINE_HOME=str(home), FORGELINE_STORE_URI=store_uri):
        return _Story(config, home, store_uri, progress).run()


def _fresh_home(home: Path, keep: tuple[str, ...] = ()) -> Path:
    """``home``, cleared of what an earlier demo left there; anything else stays."""
    home = home.expanduser().absolute()
    ours = [home / name for name in _OURS if name not in keep and (home / name).exists()]
    if ours and not (home / MARKER).exists():
        raise InvalidInput(f"{home} holds a Forgeline store or data ({ours[0].name}) that "
                           "forgeline demo did not make.",
                           hint="Choose another home folder for the demo.")
    for path in ours:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("made by forgeline demo, which replaces it on its next run\n")
    return home


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Transactions as a client sends them: JSON values, without the label."""
    return json.loads(frame.drop(columns=[TARGET]).to_json(orient="records",
                                                           date_format="iso"))


class _Story:
    def __init__(self, config: DemoConfig, home: Path, store_uri: str,
                 progress: DemoProgress) -> None:
        from forgeline.tracking.client import Client

        self.config, self.home, self.store_uri = config, home, store_uri
        self.progress = progress
        self.client = Client(store_uri)
        self.result = DemoResult(home=home, store_uri=store_uri)
        self.data = home / "data"
        self.data.mkdir()
        self.test_score = float("nan")  # the champion's, on its test split

    def run(self) -> DemoResult:
        started = time.monotonic()
        training, traffic = self._step(1, "Generate", self.generate)
        champion = self._step(2, "Train", lambda: self.train(training))
        with _Server(self.home, self.store_uri, self.config) as server:
            self._step(3, "Serve", lambda: self.serve(server, champion))
            answers = self._step(4, "Traffic", lambda: self.traffic(server.url, traffic))
            self._step(5, "Monitor", lambda: self.monitor(champion, traffic, answers))
            self._step(6, "Labels", lambda: self.feedback(traffic, answers))
            decision = self._step(7, "Retrain", self.retrain)
            self._step(8, "Switch", lambda: self.switch(server, decision, traffic))
        self.result.seconds = time.monotonic() - started
        return self.result

    def _step(self, number: int, name: str, action: Callable[[], Any]) -> Any:
        self.progress.step(number, name)
        started = time.monotonic()
        try:
            value = action()
        except (ForgelineError, httpx.HTTPError) as e:
            self.progress.done()
            self.progress.step_failed(name)
            if isinstance(e, ForgelineError):
                raise
            raise ForgelineError(f"The server did not answer: {e}.",
                                 hint=f"See its log, {self.home / 'server.log'}.") from e
        self.progress.done()
        step = self.result.steps[-1]
        step.seconds = time.monotonic() - started
        self.progress.step_done(step)
        return value

    def _done(self, name: str, result: str, short: str, path: Path | None = None) -> None:
        self.result.steps.append(Step(name, result, short, path))

    # -- the steps ------------------------------------------------------------------------
    def generate(self) -> tuple[Path, pd.DataFrame]:
        c = self.config
        self.progress.status(f"Generating {fraud.DAYS} days of card transactions")
        training, traffic = fraud.story(c.train_rows, c.requests, fraud_rate=c.fraud_rate,
                                        pattern_shift=c.pattern_shift, seed=c.seed)
        path = self.data / "transactions.parquet"
        training.to_parquet(path, index=False)
        traffic.to_parquet(self.data / "traffic.parquet", index=False)
        begins = pd.Timestamp(fraud.START) + pd.Timedelta(days=fraud.DRIFT_FROM)
        drifted = int((traffic["ts"] >= begins).sum())
        self._done("Generate", f"{len(training):,} transactions of days 0-{fraud.TRAIN_DAYS} "
                   f"to train on ({training[TARGET].mean():.1%} fraud); {len(traffic):,} of "
                   f"days {fraud.TRAIN_DAYS}-{fraud.DAYS} to send ({traffic[TARGET].mean():.1%} "
                   f"fraud), {drifted:,} of them after the drift begins on day "
                   f"{fraud.DRIFT_FROM}", f"{len(training):,} to train on, {len(traffic):,} "
                   "to send", path)
        return path, traffic

    def train(self, data: Path) -> int:
        from forgeline.workflows.train import train

        spec = fraud.fraud_spec(str(data), trials=self.config.trials)
        trained = train(spec, client=self.client, progress=self.progress)
        version = trained.model_version
        if version is None:
            raise InvalidInput(f"The champion was not registered: {trained.registered_reason}.",
                               hint="Train on more rows (train_rows).")
        self.test_score = trained.score
        self._done("Train", f"{version.ref} ({trained.model}): test {trained.metric} "
                   f"{trained.score:.4f}, registered as {MODEL}@champion",
                   f"{version.ref} ({trained.model}), test {trained.metric} "
                   f"{trained.score:.3f}", trained.report)
        return version.version

    def serve(self, server: _Server, champion: int) -> None:
        self.progress.status("Starting forgeline serve (it loads the model)")
        server.start()
        self.result.url = server.url
        self._done("Serve", f"forgeline serve {MODEL}@champion --watch (pid {server.pid}) "
                   f"answers at {server.url}/predict with {MODEL}/{champion}",
                   f"{MODEL}@champion -> {MODEL}/{champion} at {server.url}", server.log)

    def traffic(self, url: str, traffic: pd.DataFrame) -> pd.DataFrame:
        records = _records(traffic)
        started = time.monotonic()
        self.progress.task("requests", len(records))
        answers = asyncio.run(_send(url, records, self.config.concurrency,
                                    lambda: self.progress.advance(1)))
        rate = len(records) / (time.monotonic() - started)
        frame = pd.DataFrame(answers)
        frame.insert(0, "txn_id", traffic["txn_id"].to_numpy())
        path = self.data / "answers.parquet"
        frame.to_parquet(path, index=False)
        versions = sorted(set(frame["version"]))
        self.result.served_version = int(versions[-1])
        self.progress.status("Waiting for the server to write its prediction log")
        logged = self._wait_logged(len(frame))
        served = ", ".join(f"{MODEL}/{v}" for v in versions)
        self._done("Traffic", f"{len(frame):,} requests, one transaction each, answered by "
                   f"{served} ({rate:.0f}/s), their request ids kept; {logged:,} predictions "
                   "in the prediction log", f"{len(frame):,} requests ({rate:.0f}/s), "
                   f"{logged:,} logged", path)
        return frame

    def _wait_logged(self, expected: int, timeout_s: float = 60.0) -> int:
        from forgeline.store.predictions import prediction_log_root, read_predictions

        root = prediction_log_root(self.client.settings)
        deadline = time.monotonic() + timeout_s
        while True:  # the server writes its log in the background, every few seconds
            logged = len(read_predictions(root, MODEL))
            if logged >= expected or time.monotonic() > deadline:
                return logged
            time.sleep(0.5)

    def monitor(self, champion: int, traffic: pd.DataFrame, answers: pd.DataFrame) -> None:
        from forgeline.monitoring import MonitorConfig, monitor
        from forgeline.monitoring.history import record_result
        from forgeline.packaging import load_model
        from forgeline.reports import render_monitor_report
        from forgeline.store.predictions import (
            prediction_log_root,
            read_predictions,
            stored_name,
        )
        from forgeline.training.spec import load_spec

        spec = load_spec(fraud.fraud_spec("-"))
        window = spec.retrain.monitor_rows  # the retraining cycle checks the same rule on it
        self.progress.status("Comparing the logged traffic with the training profile")
        current = read_predictions(prediction_log_root(self.client.settings), MODEL,
                                   last=window)
        # The server logs the model's inputs and when it answered (its own ts). Unless the
        # model takes it as an input, a transaction's own time (data.time_column) stays with
        # the client: joined by request id, under the name the log gives an input-side ts,
        # it lets the drift over time follow the month the traffic spans, not the seconds
        # it took to send.
        event = spec.data.time_column
        if event is not None and stored_name(event) not in current.columns:
            times = pd.DataFrame({"request_id": answers["request_id"].to_numpy(),
                                  stored_name(event): traffic[event].to_numpy()})
            current = current.merge(times, on="request_id", how="left")
        result = monitor(load_model(f"{MODEL}/{champion}", self.client), current,
                         config=MonitorConfig(rules=(self.config.rule,)))
        report = render_monitor_report(result, self.home / "reports" / f"{MODEL}-monitor.html")
        warning = record_result(self.client.store, result, source="monitor", model=MODEL,
                                report=report)  # the history the web UI charts
        if warning is not None:
            self.progress.status(warning)
        d = result.dataset
        drifted = ", ".join(f.column for f in result.features.values() if f.drifted)
        self.result.alerts = [a.rule for a in result.fired]
        fired = (f"alert fired: {', '.join(self.result.alerts)}" if result.fired
                 else f"no alert: {self.config.rule} did not fire")
        self._done("Monitor", f"{d.n_drifted} of {d.n_features} features drifted ({d.share:.0%}: "
                   f"{drifted or 'none'}) in the last {result.rows:,} logged predictions, "
                   f"windowed by {result.clock.label}; {fired}",
                   f"{d.share:.0%} of features drifted; "
                   + ("alert fired" if result.fired else "no alert"), report)

    def feedback(self, traffic: pd.DataFrame, answers: pd.DataFrame) -> None:
        from sklearn.metrics import roc_auc_score

        from forgeline.store.predictions import record_feedback

        labels = pd.DataFrame({"request_id": answers["request_id"].to_numpy(),
                               TARGET: traffic[TARGET].to_numpy()})
        path = self.data / "labels.csv"  # forgeline feedback fraud labels.csv --label is_fraud
        labels.to_csv(path, index=False)
        stats = record_feedback(self.client.settings, MODEL, labels, label_column=TARGET)
        self.result.labels = stats.matched
        auc = None
        if labels[TARGET].nunique() == 2:
            auc = float(roc_auc_score(labels[TARGET], answers["p_fraud"]))
        self.result.champion_auc = auc
        realised = "" if auc is None else (f"; on them the champion's ROC AUC is {auc:.3f} "
                                           f"({self.test_score:.3f} on its test split)")
        self._done("Labels", f"the true outcomes arrive: {stats.matched:,} labels "
                   f"({int(labels[TARGET].sum()):,} frauds) joined to the logged predictions "
                   f"by request id{realised}" + (f"; {stats.message}" if stats.message else ""),
                   f"{stats.matched:,} labels joined"
                   + ("" if auc is None else f", champion's AUC {auc:.3f}"), path)

    def retrain(self) -> RetrainDecision:
        from forgeline.workflows.retrain import retrain

        c = self.config
        overrides = [f"tuning.trials={c.challenger_trials}",
                     f"retrain.triggers={json.dumps([c.rule])}",
                     f"retrain.gate.recent_rows={c.gate_rows}",
                     f"retrain.gate.min_labelled={c.min_labelled}"]
        d = retrain(MODEL, overrides, client=self.client, progress=self.progress)
        self.result.decision = d
        path = self.client.download_artifacts(d.run_id, "decision.json",
                                              self.home / "reports" / "retrain")
        if d.champion_score is not None and d.challenger_score is not None:
            short = (f"{d.action}: {MODEL}/{d.challenger} {d.challenger_score:.3f} vs "
                     f"{MODEL}/{d.champion} {d.champion_score:.3f}")
        else:
            short = d.action
        rows = (f" on the newest {d.rows['gate']:,} labelled rows" if d.rows.get("gate")
                else "")
        self._done("Retrain", f"{d.action}{rows}: {d.reason}", short, path)
        return d

    def switch(self, server: _Server, decision: RetrainDecision, traffic: pd.DataFrame) -> None:
        promoted = decision.action == "promoted"
        version = decision.challenger if promoted else decision.champion
        started = time.monotonic()
        self.progress.status(f"Waiting for the server to switch to {MODEL}/{version}"
                             if promoted else "Asking the server once more")
        answer = server.wait_for_version(_records(traffic.tail(1)), version,
                                         timeout_s=60 + 5 * self.config.watch_interval_s)
        seconds = time.monotonic() - started
        self.result.final_version = answer.get("version")
        self.result.switches = server.switches()
        answered = f"{MODEL}/{answer.get('version')}"
        if not promoted:
            self._done("Switch", f"nothing was promoted: the server still answers with "
                       f"{answered}", f"still {answered}", server.log)
            return
        if answer.get("version") != version:
            raise InvalidInput(f"The server did not switch to {MODEL}/{version} within "
                               f"{seconds:.0f} s; it answered with {answered}.",
                               hint=f"See its log, {server.log}.")
        moved = server.log_line("moved: now serving")
        self._done("Switch", f"request {answer.get('request_id')} answered by {answered} "
                   f"{seconds:.1f} s after the promotion, without a restart (model switches: "
                   f"{self.result.switches or 0:g})" + (f"; server log: {moved}" if moved
                                                        else ""),
                   f"now answers with {answered}, no restart", server.log)


async def _send(url: str, records: list[dict[str, Any]], concurrency: int,
                advance: Callable[[], None]) -> list[dict[str, Any]]:
    """POST each record on its own (one request id per transaction), oldest first, with
    ``concurrency`` requests in flight; the answers in the records' order."""
    answers: list[dict[str, Any]] = [{}] * len(records)
    queue = iter(enumerate(records))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:
        async def worker() -> None:
            for i, record in queue:
                response = await http.post("/predict", json={"records": [record]})
                if response.status_code != 200:
                    raise InvalidInput(f"The server answered {response.status_code}: "
                                       f"{response.text[:300]}")
                body = response.json()
                classes = body.get("classes") or [0, 1]
                answers[i] = {"request_id": body["request_id"], "version": body["version"],
                              "p_fraud": body["probabilities"][0][classes.index(1)]}
                advance()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answers


class _Server:
    """``forgeline serve fraud@champion --watch`` in its own process, as a user runs it."""

    def __init__(self, home: Path, store_uri: str, config: DemoConfig) -> None:
        self.log = home / "server.log"
        self.command = [
            sys.executable, "-c", "import sys; from forgeline.cli import main; main(sys.argv[1:])",
            "--store", store_uri, "serve", f"{MODEL}@champion", "--port", "0", "--watch",
            "--watch-interval", str(config.watch_interval_s), "--runtime", config.runtime]
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self, timeout_s: float = 120.0) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise InvalidInput(f"forgeline serve stopped (exit code "
                                   f"{self.process.returncode}): {self._tail()}")
            if not self.url and (match := _URL.search(self.log.read_text(errors="replace"))):
                self.url = match.group(0)  # the first URL it prints is where it listens
            if self.url and self._ready():
                return
            time.sleep(0.2)
        raise InvalidInput(f"forgeline serve was not ready after {timeout_s:.0f} s: "
                           f"{self._tail()}")

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/health/ready", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _tail(self) -> str:
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-3:])

    def wait_for_version(self, records: list[dict[str, Any]], version: int,
                         timeout_s: float) -> dict[str, Any]:
        """The first answer given by ``version``, or the last one after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            body = httpx.post(f"{self.url}/predict", json={"records": records},
                              timeout=30.0).json()
            if body.get("version") == version or time.monotonic() > deadline:
                return dict(body)
            time.sleep(0.2)

    def switches(self) -> float | None:
        text = httpx.get(f"{self.url}/metrics", timeout=10.0).text
        found = re.findall(r"^forgeline_model_switches_total\{[^}]*\} (\S+)$", text, re.M)
        return sum(float(x) for x in found) if found else None

    def log_line(self, needle: str) -> str | None:
        for line in self.log.read_text(errors="replace").splitlines():
            if needle in line:
                return line.removeprefix("INFO:").strip()
        return None

    def __enter__(self) -> _Server:
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop it as Ctrl-C does: requests in flight finish, the prediction log is flushed."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
