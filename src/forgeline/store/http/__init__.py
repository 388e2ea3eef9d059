"""The team server backend: the Store contract and artifact bytes over HTTP.

``get_store("http://host:5000")`` (or ``https://``) returns an
:class:`~.store.HttpStore`; the tracking client pairs it with an
:class:`~.artifacts.HttpArtifactStore`. The JSON of every entity is in :mod:`.wire`,
shared with the server; the connection, retries and errors in :mod:`.transport`.

Nothing is imported here, so that the server can use :mod:`.wire` without loading httpx.
"""
