"""What every MLflow route module shares: its router, the role each route needs, the stores."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from forgeline.entities import Role
from forgeline.server.auth import require
from forgeline.server.mlflow.errors import MlflowRoute
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.base import Store

__all__ = ["ADMIN", "READ", "WRITE", "artifacts_of", "new_router", "store_of"]

READ = [Depends(require(Role.READER))]
WRITE = [Depends(require(Role.WRITER))]
ADMIN = [Depends(require(Role.ADMIN))]


def new_router() -> APIRouter:
    """A router whose routes answer errors in MLflow's shape."""
    return APIRouter(route_class=MlflowRoute)


def store_of(request: Request) -> Store:
    return request.app.state.store


def artifacts_of(request: Request) -> ArtifactStore:
    return request.app.state.artifacts
