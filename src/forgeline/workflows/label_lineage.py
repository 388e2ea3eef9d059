"""Lineage from labels to models: which labelling run produced the table a training run
loads.

A labelling run tags itself with the content digest of the table it wrote
(``forgeline.labels.digest``); training computes the same digest of what it loads and
searches every experiment's runs for that tag (the run search language, so it works the
same on SQLite, PostgreSQL and the HTTP store). The newest such run is the lineage.
"""

from __future__ import annotations

from forgeline.tracking.client import Client

__all__ = ["DIGEST_TAG", "LLM_TAG", "RUN_TAG", "SOURCES_TAG", "label_lineage"]

DIGEST_TAG = "forgeline.labels.digest"
SOURCES_TAG = "forgeline.labels.sources"  # JSON {source name: version}
LLM_TAG = "forgeline.labels.llm"  # model@url
RUN_TAG = "forgeline.labels.run"  # on a training run: the labelling run of its data


def label_lineage(client: Client, digest: str) -> dict[str, str]:
    """Tags for a training run whose data has content ``digest``: the labelling run that
    wrote it, its sources and its LLM; empty when no labelling run wrote that table."""
    if not all(c in "0123456789abcdef" for c in digest):
        return {}
    found = client.search_runs(None, f"tags.`{DIGEST_TAG}` = '{digest}' and "
                                     "status = 'FINISHED'",
                               order_by=["start_time DESC"], max_results=1)
    if not found:
        return {}
    run = found[0]
    tags = {RUN_TAG: run.run_id}
    for key in (SOURCES_TAG, LLM_TAG):
        if key in run.tags:
            tags[key] = run.tags[key]
    return tags
