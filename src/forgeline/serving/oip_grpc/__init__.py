"""The Open Inference Protocol v2 over gRPC (``inference.GRPCInferenceService``).

Optional: it needs grpcio and protobuf (``pip install 'forgeline[grpc]'``), and nothing
imports them until a server is started with a gRPC port (:func:`load`), so a server
without one never pays for them.

- ``grpc_predict_v2.proto``: the protocol's service and messages;
  ``grpc_predict_v2_pb2.py`` and ``grpc_predict_v2_pb2_grpc.py`` are generated from it
  (committed; ``_generate.py`` says how);
- :mod:`.service`: the service itself, on the HTTP server's event loop.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from forgeline.serving.config import InvalidSetting

__all__ = ["INSTALL_HINT", "load"]

INSTALL_HINT = "Install them: pip install 'forgeline[grpc]'."


def load() -> ModuleType:
    """The gRPC service module (:mod:`forgeline.serving.oip_grpc.service`), imported now.

    Raises:
        InvalidSetting: naming ``listener.grpc_port``, when grpcio or protobuf is missing
            or older than the generated code needs.
    """
    try:
        service = importlib.import_module(f"{__name__}.service")
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("grpc", "google"):
            raise
        raise InvalidSetting("{0} needs grpcio and protobuf, which are not installed.",
                             "listener.grpc_port", hint=INSTALL_HINT) from None
    except Exception as e:  # the generated code checks the versions it runs with
        detail = str(e).replace("{", "{{").replace("}", "}}").rstrip(".")
        raise InvalidSetting("{0} cannot use the installed grpcio or protobuf: " + detail + ".",
                             "listener.grpc_port", hint=INSTALL_HINT) from None
    return service
