"""``forgeline build``: a Docker image that serves one model version.

The build context holds the verified model package (``model/``), pinned requirements,
Forgeline itself (a wheel built from this source checkout, or a ``forgeline==<version>``
pin when installed from an index), a ``.dockerignore`` and the Dockerfile: the base image
pinned to a full version tag (:data:`BASE_IMAGE`: a moving ``python:3.11-slim`` would give
two builds of one context different Pythons and Debian packages), a non-root user (uid
:data:`UID`), ``EXPOSE 8080``, a HEALTHCHECK on ``/v2/health/ready`` with Python's
urllib (the slim image has no curl), and ``forgeline serve /app/model``. The image is built
when a Docker engine answers ``docker info``; otherwise the context is left ready with
the command to build it.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from forgeline.errors import AlreadyExists, InvalidInput
from forgeline.packaging.package import MANIFEST_FILE, REQUIREMENTS_FILE, verify_package
from forgeline.packaging.predictor import Predictor, load_model

if TYPE_CHECKING:
    from forgeline.tracking.client import Client

__all__ = ["BASE_IMAGE", "HOME", "PORT", "UID", "BuildResult", "build_image", "docker_available",
           "identity", "image_tag", "write_context"]

BASE_IMAGE = "python:3.11.14-slim-bookworm"  # Python and Debian release both pinned
PORT = 8080
UID = 10001  # the image's user; Kubernetes manifests run the pod as this uid
HOME = "/var/lib/forgeline"  # FORGELINE_HOME in the image: all the server writes
MARKER = ".forgeline-build"  # marks a directory this module wrote (safe to replace)
_SERVING_EXTRAS = ("onnxruntime", "skl2onnx", "onnxmltools", "onnx")  # fast inference


@dataclass(frozen=True, slots=True)
class BuildResult:
    """A written build context and what became of it.

    Attributes:
        context: the build context directory.
        tag: the image tag.
        command: the ``docker build`` command line for the context.
        built: whether the image was built (a Docker engine was available).
        log: the tail of ``docker build``'s output when it ran.
    """

    context: Path
    tag: str
    command: list[str]
    built: bool = False
    log: str = field(default="", repr=False)


def write_context(ref_or_predictor: str | Path | Predictor, directory: Path | None = None,
                  *, tag: str | None = None, client: Client | None = None) -> BuildResult:
    """Write the build context for a model; see the module docstring for what it holds.

    Args:
        ref_or_predictor: a model reference, a package directory or a loaded Predictor.
        directory: where to write it (default ``./build/<name>-<version>``); must be new,
            empty, or a context written here before (replaced).
        tag: the image tag (default ``forgeline-<name>:<version>``).
        client: the registry to resolve a reference in.

    Raises:
        AlreadyExists: ``directory`` holds something else.
        InvalidInput: a requirement cannot be pinned, or the Forgeline wheel cannot be built.
        IntegrityError: the copied package fails verification.
    """
    predictor = ref_or_predictor if isinstance(ref_or_predictor, Predictor) else (
        load_model(ref_or_predictor, client))
    name, version = identity(predictor)
    tag = tag or image_tag(predictor)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*(:[\w][\w.-]{0,127})?", tag):
        raise InvalidInput(f"Invalid image tag {tag!r}.",
                           hint="Use lowercase letters, digits, '.', '_', '-' and '/', "
                                "then optionally ':' and a version, e.g. fraud-api:3.")
    context = Path(directory) if directory is not None else Path("build") / f"{name}-{version}"
    _prepare(context)
    package = context / "model"
    verify_package(predictor.path)
    shutil.copytree(predictor.path, package,
                    ignore=lambda d, names: _unlisted(predictor.path, Path(d), names))
    verify_package(package)  # what goes into the image is exactly what was registered
    source = _forgeline_source()
    wheel = _build_wheel(source, context / "wheels") if source is not None else None
    requirements = _pinned((predictor.path / REQUIREMENTS_FILE).read_text(),
                           from_wheel=wheel is not None)
    (context / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (context / ".dockerignore").write_text(
        "**/__pycache__\n**/*.pyc\n**/.onnx-cache\n**/.*.tmp*\n.git\n")
    (context / "Dockerfile").write_text(dockerfile(wheel.name if wheel else None,
                                                   f"{name}:{version}"))
    (context / MARKER).write_text(f"{name}:{version}\n")
    return BuildResult(context.absolute(), tag,
                       ["docker", "build", "-t", tag, str(context.absolute())])


def image_tag(predictor: Predictor) -> str:
    """The tag ``forgeline build`` gives the image of ``predictor``:
    ``forgeline-<name>:<version>`` (``forgeline-<folder>:latest`` for a bare package)."""
    name, version = identity(predictor)
    return f"forgeline-{name}:{version}"


def dockerfile(wheel: str | None, label: str) -> str:
    """The Dockerfile text (``wheel``: the Forgeline wheel in ``wheels/``, if any)."""
    health = ("import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
              f"'http://127.0.0.1:{PORT}/v2/health/ready', timeout=4).status == 200 else 1)")
    install = (f"RUN pip install -r /tmp/requirements.txt /tmp/wheels/{wheel}"
               if wheel else "RUN pip install -r /tmp/requirements.txt")
    copy_wheels = "COPY wheels/ /tmp/wheels/\n" if wheel else ""
    return f"""# Serves the Forgeline model {label}. Written by `forgeline build`.
FROM {BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 FORGELINE_HOME={HOME}
COPY requirements.txt /tmp/requirements.txt
{copy_wheels}{install} && rm -rf /tmp/wheels /tmp/requirements.txt
RUN useradd --create-home --uid {UID} --user-group forgeline \\
    && mkdir -p {HOME} /app && chown forgeline:forgeline {HOME} /app
WORKDIR /app
COPY --chown=forgeline:forgeline model/ /app/model/
USER {UID}:{UID}
EXPOSE {PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "{health}"]
CMD ["forgeline", "serve", "/app/model", "--host", "0.0.0.0", "--port", "{PORT}"]
"""


def docker_available() -> bool:
    """Whether a Docker engine answers (``docker info`` succeeds), not just the client."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def build_image(result: BuildResult) -> BuildResult:
    """Run ``docker build`` for a written context.

    Raises:
        InvalidInput: the build failed (the message ends with its output).
    """
    done = subprocess.run(result.command, capture_output=True, text=True, check=False)
    log = (done.stdout + done.stderr)[-4000:]
    if done.returncode != 0:
        raise InvalidInput(f"docker build failed (exit {done.returncode}): {log[-1500:]}",
                           hint=f"The context is in {result.context}.")
    return BuildResult(result.context, result.tag, result.command, True, log)


# -- helpers ------------------------------------------------------------------------------
def identity(predictor: Predictor) -> tuple[str, str]:
    """``(name, version)`` of a model, as images and deployments name it: the registered
    name in lowercase and its version, or a bare package's folder name and ``latest``."""
    mv = predictor.model_version
    if mv is not None:
        return mv.name.lower(), str(mv.version)
    base = re.sub(r"[^a-z0-9._-]+", "-", Path(predictor.path).name.lower()).strip("-._")
    return base or "model", "latest"


def _prepare(context: Path) -> None:
    if context.exists():
        if not context.is_dir():
            raise AlreadyExists(f"{context} exists and is not a directory.")
        if any(context.iterdir()):
            if not (context / MARKER).is_file():
                raise AlreadyExists(f"{context} is not empty.",
                                    hint="Choose a new directory with -o, or empty it.")
            shutil.rmtree(context)  # a context written here before: replaced
    context.mkdir(parents=True, exist_ok=True)


def _unlisted(root: Path, directory: Path, names: list[str]) -> set[str]:
    """Files the manifest does not list (caches, temporaries) stay out of the image."""
    import json

    listed = set(json.loads((root / MANIFEST_FILE).read_text())["files"]) | {MANIFEST_FILE}
    relative = directory.relative_to(root)
    return {n for n in names if not any(
        (relative / n).as_posix() == f or f.startswith(f"{(relative / n).as_posix()}/")
        for f in listed)}


def _forgeline_source() -> Path | None:
    """The project root when Forgeline runs from a source checkout, else None."""
    root = Path(__file__).resolve().parents[3]  # src/forgeline/serving/docker.py
    pyproject = root / "pyproject.toml"
    if root.joinpath("src", "forgeline").is_dir() and pyproject.is_file() and re.search(
            r'(?m)^name\s*=\s*"forgeline"', pyproject.read_text(encoding="utf-8")):
        return root
    return None


def _build_wheel(source: Path, target: Path) -> Path:
    """``pip wheel --no-deps`` of a clean copy of the project (pyproject, README, src):
    setuptools would otherwise leave ``build/`` in the checkout and reuse stale files."""
    import tempfile

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="forgeline-wheel-") as tmp:
        copy = Path(tmp) / "forgeline"
        copy.mkdir()
        for item in source.iterdir():
            if item.is_file() and (item.suffix in (".toml", ".cfg", ".py", ".md", ".txt")
                                   or item.name.upper().startswith(("LICENSE", "NOTICE"))):
                shutil.copy2(item, copy / item.name)
        shutil.copytree(source / "src", copy / "src", ignore=shutil.ignore_patterns(
            "__pycache__", "*.pyc", "*.egg-info"))
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(copy),
                   "-w", str(target)]
        # offline with this environment's build backend first; else pip fetches the
        # backend the project asks for (an index must be reachable)
        done = subprocess.run([*command, "--no-build-isolation"], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(target.glob("forgeline-*.whl"))
    if done.returncode != 0 or not wheels:
        raise InvalidInput(f"Building the Forgeline wheel from {source} failed: "
                           f"{(done.stdout + done.stderr).strip()[-800:]}",
                           hint="Install Forgeline from a wheel or an index, or fix the "
                                "build (pip wheel --no-deps <project root>).")
    return wheels[-1]


def _pinned(package_requirements: str, *, from_wheel: bool) -> list[str]:
    """``name==version`` lines: the package's own pins, then Forgeline's runtime
    dependencies and the ONNX Runtime stack at this environment's versions."""
    pins: dict[str, tuple[str, str]] = {}  # name -> (name[extras], version)

    def pin(requirement: str, version: str | None = None) -> None:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?", requirement)
        if match is None:
            raise InvalidInput(f"Cannot read the requirement {requirement!r}.")
        name = match.group(1)
        if name.lower() not in pins:
            pins[name.lower()] = (name + (match.group(2) or ""),
                                  version or _installed(name))

    for line in package_requirements.splitlines():
        line = line.split("#")[0].strip()
        if line:
            pin(line, line.partition("==")[2].strip() or None)
    if from_wheel:
        pins.pop("forgeline", None)  # the wheel next to it is this very version
    else:
        pin("forgeline")
    for requirement in importlib.metadata.requires("forgeline") or []:
        if "extra ==" not in requirement:
            pin(requirement)
    for name in _SERVING_EXTRAS:
        try:
            pin(name, importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            continue
    return [f"{spec}=={version}" for _, (spec, version) in sorted(pins.items())]


def _installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        raise InvalidInput(f"Cannot pin the requirement {name!r}: it is not installed here.",
                           hint=f"pip install {name} so that its version can be pinned."
                           ) from None
