"""``forgeline build``: the Docker build context, checked file by file (no Docker engine
runs here, so the image itself is not built)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from forgeline.cli import app
from forgeline.data.inference import infer_schema
from forgeline.errors import AlreadyExists, InvalidInput
from forgeline.packaging import Signature, save_package, verify_package
from forgeline.serving import docker


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"amount": rng.gamma(2, 40, 200), "items": rng.integers(1, 9, 200)})
    y = (X.amount > 80).astype(int)
    schema = infer_schema(X.assign(label=y), "label")
    directory = tmp_path_factory.mktemp("docker") / "Fraud Model"
    save_package(directory, LogisticRegression().fit(X, y),
                 Signature.from_frame(X, schema, "binary", [0, 1]), profile={}, metrics={},
                 card="")
    (directory / ".onnx-cache").mkdir()  # a cache beside the package stays out of the image
    (directory / ".onnx-cache" / "x.onnx").write_bytes(b"cache")
    return directory


@pytest.fixture()
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """As when Forgeline is installed from an index: no source tree, a version pin."""
    monkeypatch.setattr(docker, "_forgeline_source", lambda: None)


def instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    return [line for line in joined.splitlines() if line and not line.startswith("#")]


def test_the_context_holds_the_verified_package_and_a_hardened_dockerfile(
        tmp_path: Path, package_dir: Path, pinned: None) -> None:
    result = docker.write_context(package_dir, tmp_path / "ctx")
    context = tmp_path / "ctx"
    assert result.context == context.absolute() and not result.built
    assert result.tag == "forgeline-fraud-model:latest"
    assert result.command == ["docker", "build", "-t", result.tag, str(context.absolute())]
    verify_package(context / "model")
    assert not (context / "model" / ".onnx-cache").exists()
    requirements = (context / "requirements.txt").read_text().splitlines()
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9._-]+(\[[\w,]+\])?==[\w.+-]+", r)
                                for r in requirements)
    names = {r.split("==")[0].split("[")[0] for r in requirements}
    assert {"forgeline", "scikit-learn", "numpy", "skops", "fastapi", "uvicorn"} <= names
    lines = instructions((context / "Dockerfile").read_text())
    assert lines[0] == f"FROM {docker.BASE_IMAGE}"
    assert "RUN pip install -r /tmp/requirements.txt && rm -rf /tmp/wheels " \
           "/tmp/requirements.txt" in lines
    assert "EXPOSE 8080" in lines
    assert lines[-1] == ('CMD ["forgeline", "serve", "/app/model", "--host", "0.0.0.0", '
                         '"--port", "8080"]')
    health = next(line for line in lines if line.startswith("HEALTHCHECK"))
    assert "urllib.request" in health and "/v2/health/ready" in health
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines.index(f"USER {users[-1]}") > max(i for i, line in enumerate(lines)
                                                 if line.startswith(("RUN", "COPY")))
    assert "**/.onnx-cache" in (context / ".dockerignore").read_text()


def test_the_source_checkout_is_detected() -> None:
    root = docker._forgeline_source()
    assert root is not None and (root / "src" / "forgeline" / "__init__.py").is_file()


def test_a_source_checkout_ships_its_own_wheel(tmp_path: Path, package_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # a small project stands in for this checkout: building the real one needs pip to
    # fetch a recent setuptools from an index, which CI may not reach
    project = tmp_path / "project"
    (project / "src" / "forgeline").mkdir(parents=True)
    (project / "src" / "forgeline" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "forgeline"\nversion = "0.0.1"\n')
    monkeypatch.setattr(docker, "_forgeline_source", lambda: project)
    result = docker.write_context(package_dir, tmp_path / "ctx", tag="fraud-api:3")
    wheels = [p.name for p in (result.context / "wheels").iterdir()]
    assert wheels == ["forgeline-0.0.1-py3-none-any.whl"]
    assert not (project / "build").exists()  # built from a copy: the checkout stays clean
    assert "forgeline==" not in (result.context / "requirements.txt").read_text()
    dockerfile = (result.context / "Dockerfile").read_text()
    assert "COPY wheels/ /tmp/wheels/" in dockerfile
    assert "RUN pip install -r /tmp/requirements.txt /tmp/wheels/forgeline-0.0.1-py3-none-" \
           "any.whl" in dockerfile and result.tag == "fraud-api:3"


def test_a_directory_with_other_things_is_not_overwritten(
        tmp_path: Path, package_dir: Path, pinned: None) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "notes.txt").write_text("mine")
    with pytest.raises(AlreadyExists, match="is not empty"):
        docker.write_context(package_dir, tmp_path / "ctx")
    first = docker.write_context(package_dir, tmp_path / "again")
    second = docker.write_context(package_dir, tmp_path / "again")  # its own: replaced
    assert first.context == second.context
    with pytest.raises(InvalidInput, match="Invalid image tag"):
        docker.write_context(package_dir, tmp_path / "t", tag="Bad Tag")


def test_the_build_command_prints_how_to_build_without_a_docker_engine(
        tmp_path: Path, package_dir: Path, pinned: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker, "docker_available", lambda: False)
    result = CliRunner().invoke(app, ["build", str(package_dir), "-o", str(tmp_path / "ctx"),
                                      "--tag", "fraud:1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        f"docker build -t fraud:1 {(tmp_path / 'ctx').absolute()}")
    assert "No Docker engine" in result.stderr
    assert (tmp_path / "ctx" / "Dockerfile").is_file()


def test_docker_available_needs_an_engine_not_just_the_client() -> None:
    assert isinstance(docker.docker_available(), bool)


@pytest.mark.parametrize("wheel", [None, "forgeline-0.1.0-py3-none-any.whl"])
def test_the_dockerfile_is_pinned_non_root_health_checked_and_free_of_secrets(
        wheel: str | None) -> None:
    lines = instructions(docker.dockerfile(wheel, "fraud:3"))
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    # a full Python version and Debian release (or a digest), never a moving tag
    assert bases and all(re.fullmatch(
        r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?|[^@\s]+@sha256:[0-9a-f]{64}",
        base) for base in bases), bases
    # a numeric user, so that Kubernetes' runAsNonRoot can tell it is not root
    user = [line.split()[1] for line in lines if line.startswith("USER ")][-1]
    assert re.fullmatch(r"\d+(:\d+)?", user) and user.split(":")[0] == str(docker.UID) != "0"
    (health,) = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert " CMD " in health and "NONE" not in health
    variables = [name for line in lines if line.startswith(("ENV ", "ARG "))
                 for name in re.findall(r"([A-Za-z_]\w*)(?==|\s|$)", line.split(None, 1)[1])]
    assert "FORGELINE_HOME" in variables
    assert not [v for v in variables if re.search(r"TOKEN|PASSWORD|SECRET", v, re.I)]
