"""Regenerate ``grpc_predict_v2_pb2.py`` and ``grpc_predict_v2_pb2_grpc.py`` from the .proto.

Run from the repository root, in an environment with grpcio-tools (not a dependency of
Forgeline: the generated modules are committed, nothing is generated at install time)::

    python -m venv /tmp/gen && /tmp/gen/bin/pip install grpcio-tools==1.72.1
    /tmp/gen/bin/python src/forgeline/serving/oip_grpc/_generate.py

grpcio-tools 1.72.1 writes protobuf 6.30 code, which needs ``protobuf>=6.30`` and
``grpcio>=1.72.1`` at run time (the ``grpc`` extra's floors): regenerate with the same
version, or move those floors with it.

One line of protoc's output is changed: the descriptors go into a descriptor pool of
their own instead of protobuf's default pool. tritonclient, KServe and MLServer each
register the same ``inference.*`` messages in the default pool, and a second copy there is
an import-time error ("duplicate symbol 'inference.ServerLiveRequest'"), so a process
that serves with Forgeline and also imports one of those clients would fail. The names
of messages are not on the wire, so this changes nothing a client sees.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2]  # src/
PROTO = HERE / "grpc_predict_v2.proto"
DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
OWN_POOL = "_descriptor_pool.DescriptorPool().AddSerializedFile("
HEADER = (
    "# ruff: noqa\n"
    "# Generated from grpc_predict_v2.proto (beside this file) by grpcio-tools {version}\n"
    "# with _generate.py, which explains why the descriptor pool is not the default one.\n"
    "# Do not edit: regenerate.\n")


def main() -> int:
    from importlib.metadata import version

    from grpc_tools import protoc

    relative = PROTO.relative_to(SRC)
    code = protoc.main(["grpc_tools.protoc", f"-I{SRC}", f"--python_out={SRC}",
                        f"--grpc_python_out={SRC}", str(relative)])
    if code != 0:
        return int(code)
    header = HEADER.format(version=version("grpcio-tools"))
    messages = HERE / "grpc_predict_v2_pb2.py"
    text = messages.read_text()
    if text.count(DEFAULT_POOL) != 1:
        raise SystemExit(f"protoc's output has changed: expected one {DEFAULT_POOL!r}")
    messages.write_text(header + text.replace(DEFAULT_POOL, OWN_POOL))
    service = HERE / "grpc_predict_v2_pb2_grpc.py"
    service.write_text(header + service.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
