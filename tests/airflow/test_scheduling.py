"""Datasets, schedules and timetables at definition: the shim answers ``definition_checks.checks()``
exactly as Airflow 2.10.5 did (``recorded/definitions.json``, written by that file under the real
Airflow), item by item; and what a DAG file with them does under the shim's loader and CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.airflow import definition_checks

RECORDED = json.loads(definition_checks.RECORDED.read_text())


@pytest.fixture(scope="module")
def answers() -> dict[str, Any]:
    from lexis_prefect.airflow import _finder

    _finder.install(force=True)
    return json.loads(json.dumps(definition_checks.checks(), sort_keys=True))


def _items() -> list[Any]:
    return [
        pytest.param(part, key, id=f"{part}-{key}") for part, values in sorted(RECORDED.items()) for key in sorted(values)
    ]


@pytest.mark.parametrize(("part", "key"), _items())
def test_definition_as_airflow(part: str, key: str, answers: dict[str, Any]) -> None:
    assert answers[part][key] == RECORDED[part][key]


def test_every_recorded_item_is_answered(answers: dict[str, Any]) -> None:
    assert {p: sorted(v) for p, v in answers.items()} == {p: sorted(v) for p, v in RECORDED.items()}
