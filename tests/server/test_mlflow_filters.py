"""MLflow's search grammar, as the client writes it, translated into Forgeline's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from forgeline.errors import InvalidInput
from forgeline.server.mlflow.filters import (
    LOGGED_MODEL_KEYS,
    match,
    translate_filter,
    translate_order_by,
)


@pytest.mark.parametrize(("mlflow_filter", "forgeline_filter"), [
    ("metrics.auc > 0.9 and params.depth = '6'", "metrics.`auc` > 0.9 AND params.`depth` = '6'"),
    ("tags.\"mlflow.runName\" = 'a'", "attributes.name = 'a'"),
    ("tags.`mlflow.parentRunId` = 'x'", "attributes.parent_run_id = 'x'"),
    ("tags.mlflow.user = 'me'", "tags.`mlflow.user` = 'me'"),
    ("attributes.run_name ILIKE '%ab%'", "attributes.name ILIKE '%ab%'"),
    ("run_name = 'a' OR status != 'KILLED'",
     "attributes.name = 'a' OR attributes.status != 'KILLED'"),
    ("attributes.created >= 5 and attribute.end_time < 9", "attributes.start_time >= 5 AND "
     "attributes.end_time < 9"),
    ("metric.`val loss` < 1", "metrics.`val loss` < 1"),
    ("parameters.\"opt\" LIKE 'ad%'", "params.`opt` LIKE 'ad%'"),
    ("attributes.run_id IN ('a', 'b')", "attributes.run_id IN ( 'a' , 'b' )"),
    ("attributes.user_id = 'me'", "tags.`mlflow.user` = 'me'"),
    ("", None),
])
def test_run_filters_translate(mlflow_filter: str, forgeline_filter: str | None) -> None:
    assert translate_filter(mlflow_filter) == forgeline_filter


@pytest.mark.parametrize(("mlflow_filter", "message"), [
    ("params.lr IS NULL", "Invalid filter 'params.lr IS NULL': IS NULL and IS NOT NULL are "
                          "not supported by Forgeline's MLflow-compatible API."),
    ("datasets.name = 'x'", "Filtering runs on datasets (datasets.name) is not supported by "
                            "Forgeline's MLflow-compatible API."),
    ("attributes.artifact_uri = 'x'", "Filtering or ordering runs by 'artifact_uri' is not "
                                      "supported by Forgeline's MLflow-compatible API."),
    ("attributes.colour = 'x'", "Invalid attribute 'colour' for runs; Forgeline's "
                                "MLflow-compatible API knows created, end_time, "
                                "experiment_id, name, run name, run_id, run_name, "
                                "start_time, status, user_id."),
    ("model.x = 'y'", "Invalid key 'model.x': the prefix must be metrics, params, tags or "
                      "attributes."),
    ("metrics.auc > 0.9 and", "Invalid filter 'metrics.auc > 0.9 and' (read as "
                              "'metrics.`auc` > 0.9 AND') at position 24 (near 'end of "
                              "filter'): expected a key such as metrics.auc."),
    ("metrics.auc ~ 1", "Invalid filter 'metrics.auc ~ 1': unexpected character at "
                        "position 13 (near '~ 1')."),
])
def test_untranslatable_filters_say_why(mlflow_filter: str, message: str) -> None:
    with pytest.raises(InvalidInput) as e:
        translate_filter(mlflow_filter)
    assert e.value.message == message


def test_order_by_and_logged_model_keys() -> None:
    assert translate_order_by(["metrics.auc DESC", "attributes.start_time",
                               "tags.\"mlflow.runName\" asc", "params.`a b`"]) == [
        "metrics.`auc` DESC", "attributes.start_time ASC", "attributes.name ASC",
        "params.`a b` ASC"]
    assert translate_filter("name = 'model' and source_run_id = 'r1'", LOGGED_MODEL_KEYS) == (
        "attributes.name = 'model' AND attributes.parent_run_id = 'r1'")
    with pytest.raises(InvalidInput, match="expected a key and an optional ASC or DESC"):
        translate_order_by(["metrics.auc DOWN"])
    with pytest.raises(InvalidInput, match="by 'model_id' is not supported"):
        translate_filter("model_id = 'm-1'", LOGGED_MODEL_KEYS)


def test_match_on_names_and_tags() -> None:
    models = [SimpleNamespace(name="fraud", tags={}),
              SimpleNamespace(name="Fraud-2", tags={"mlflow.prompt.is_prompt": "true"}),
              SimpleNamespace(name="churn", tags={"team": "risk"})]

    def names(text: str | None) -> list[str]:
        return [m.name for m in match(models, text, {"name": lambda m: m.name}, "models",
                                      lambda m: m.tags)]

    assert names(None) == ["fraud", "Fraud-2", "churn"]
    assert names("name ILIKE 'fraud%'") == ["fraud", "Fraud-2"]
    assert names("name LIKE 'fraud%'") == ["fraud"]
    assert names("tag.`mlflow.prompt.is_prompt` != 'true'") == ["fraud", "churn"]
    assert names("name IN ('churn', 'x') or tags.team = 'risk'") == ["churn"]
    with pytest.raises(InvalidInput, match="Filtering models on metrics"):
        names("metrics.auc > 1")
