"""Schemathesis (property-based API testing) against the app's own /openapi.json: every request
it generates from the schema must be answered without a 5xx and as the schema says.

The suite tries 10 requests per operation; the benchmark run sets more through the environment
(benchmarks/RESULTS.md): PRODGEN_SCHEMA_EXAMPLES=200 .venv/bin/pytest tests/test_serve_schema.py
"""

from __future__ import annotations

import os

import pytest
import schemathesis
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from prodgen.serve.app import create_app
from prodgen.serve.settings import ServeSettings

torch.set_num_threads(1)
EXAMPLES = int(os.environ.get("PRODGEN_SCHEMA_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = create_app(ServeSettings(models=["fmnist-cgan"], backend="eager", data_dir=tmp_path_factory.mktemp("serve")))
    with TestClient(app):  # runs the app's lifespan (the models load) for schemathesis' in-process calls
        yield app


def test_every_generated_request_is_answered_by_the_schema(app):
    """Each operation in its own Hypothesis run (schemathesis' pytest plugin does not load under this
    pytest); the failures of all operations are reported together."""
    failures = {}
    for loaded in schemathesis.openapi.from_asgi("/openapi.json", app).get_all_operations():
        operation = loaded.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answered_by_the_schema(case):
            # Every check but the positive-data one: a model name or a category is a string in the
            # schema, and one the server does not have is a 422 naming the valid ones (as it should be).
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            answered_by_the_schema()
        except Exception as failure:  # every operation's failure is collected and shown
            failures[operation.label] = failure
    assert not failures, "\n\n".join(f"{label}: {failure}" for label, failure in failures.items())
