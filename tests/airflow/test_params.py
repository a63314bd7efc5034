"""Params: ``Param`` and ``ParamsDict`` behave as Airflow 2.10.5's ``airflow/models/param.py``.

Error texts and warnings below were copied from a real Airflow 2.10.5 run of the same calls.
"""

from __future__ import annotations

import copy
import pickle
import warnings
from typing import TypedDict

import pytest
from pydantic import BaseModel

from lexis_prefect.airflow.exceptions import ParamValidationError, RemovedInAirflow3Warning
from lexis_prefect.airflow.params import NOTSET, Param, ParamsDict

JOB_SCHEMA = {
    "type": "object",
    "required": ["requirements", "data_inputs"],
    "properties": {"requirements": {"type": "object"}, "data_inputs": {"type": "array"}},
}


def job_params() -> ParamsDict:
    return ParamsDict(
        {
            "job1": Param({"requirements": {"cpus": 4}, "data_inputs": ["a"]}, schema=JOB_SCHEMA),
            "project": "demo",
        }
    )


# --- Param ---------------------------------------------------------------------------------------


def test_schema_from_kwargs() -> None:
    p = Param("", type="string", minLength=0)
    assert p.schema == {"type": "string", "minLength": 0}
    assert p.value == ""
    assert p.description is None


def test_schema_keyword_is_the_schema() -> None:
    p = Param(1, "how many", schema={"type": "integer"}, type="string")
    assert p.schema == {"type": "integer"}  # other kwargs are ignored when schema= is given
    assert p.description == "how many"
    assert p.resolve() == 1


def test_resolve_default_and_value() -> None:
    p = Param(3, type="integer", minimum=1)
    assert p.resolve() == 3
    assert p.resolve(5) == 5
    assert p.value == 5  # resolve stores the accepted value
    assert p.resolve() == 5


def test_resolve_invalid_value_keeps_jsonschema_text() -> None:
    p = Param(5, type="string")
    with pytest.raises(ParamValidationError) as err:
        p.resolve()
    assert str(err.value) == (
        "5 is not of type 'string'\n\nFailed validating 'type' in schema:\n    {'type': 'string'}"
        "\n\nOn instance:\n    5"
    )
    assert p.resolve(suppress_exception=True) is None
    assert p.value == 5  # a rejected value is not stored


def test_resolve_invalid_new_value_is_not_stored() -> None:
    p = Param("a", enum=["a", "b"])
    with pytest.raises(ParamValidationError, match=r"^'c' is not one of \['a', 'b'\]"):
        p.resolve("c")
    assert p.value == "a"


def test_resolve_without_default() -> None:
    p = Param(type="string")
    assert p.value is NOTSET
    assert not p.has_value
    with pytest.raises(ParamValidationError, match="^No value passed and Param has no default value$"):
        p.resolve()
    assert p.resolve(suppress_exception=True) is None
    assert p.resolve("x") == "x"
    assert p.has_value


def test_no_schema_accepts_anything_including_none() -> None:
    assert Param(None).resolve() is None
    assert not Param(None).has_value
    assert Param({"a": [1]}).resolve() == {"a": [1]}


def test_format_checker_is_used() -> None:
    with pytest.raises(ParamValidationError, match=r"^'2023-13-01' is not a 'date'"):
        Param("2023-13-01", type="string", format="date").resolve()
    with pytest.raises(ParamValidationError, match=r"^'x' is not a 'email'"):
        Param("x", type="string", format="email").resolve()


def test_rfc3339_date_time_passes_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Param("2023-01-01T10:00:00+00:00", type="string", format="date-time").resolve()


def test_date_time_falls_back_to_iso8601_with_warnings() -> None:
    p = Param(type="string", format="date-time")
    with pytest.warns(RemovedInAirflow3Warning) as record:
        assert p.resolve("2023-01-01T10:00:00") == "2023-01-01T10:00:00"
    assert [str(w.message) for w in record] == [
        "The use of non-RFC3339 datetime: '2023-01-01T10:00:00' is deprecated and will be removed in a "
        "future release",
        "The use naive datetime is deprecated and will be removed in a future release",
    ]
    assert p.value == "2023-01-01T10:00:00"
    with pytest.warns(RemovedInAirflow3Warning) as record:
        assert p.resolve("20230101T100000Z") == "20230101T100000Z"
    assert len(record) == 1  # aware: no naive warning


@pytest.mark.parametrize("value", ["2023-01-01", "nope"])
def test_date_time_fallback_needs_a_datetime(value: str) -> None:
    with pytest.raises(ParamValidationError, match=rf"^'{value}' is not a 'date-time'"):
        Param(value, type="string", format="date-time").resolve()


def test_non_json_default_or_value_only_warns() -> None:
    with pytest.warns(RemovedInAirflow3Warning, match="^The use of non-json-serializable params is deprecated"):
        p = Param({1, 2})
    with pytest.warns(RemovedInAirflow3Warning, match="non-json-serializable"):
        assert Param(1).resolve({3}) == {3}
    assert p.value == {1, 2}


def test_dump() -> None:
    assert Param(1, "d", type="integer").dump() == {
        "__class": "lexis_prefect.airflow.params.Param",
        "value": 1,
        "description": "d",
        "schema": {"type": "integer"},
    }
    assert Param(type="integer").dump()["value"] is None


def test_class_schema_is_refused_at_construction() -> None:
    """Airflow accepts it and fails at validation with "argument of type 'type' is not iterable"."""

    class Job(BaseModel):
        cpus: int

    with pytest.raises(TypeError, match=r"schema=Job\.model_json_schema\(\)"):
        Param({"cpus": 1}, schema=Job)

    class Td(TypedDict):
        cpus: int

    with pytest.raises(TypeError, match="not the class"):
        Param({"cpus": 1}, schema=Td)


def test_pydantic_json_schema_works() -> None:
    class Job(BaseModel):
        cpus: int

    p = Param({"cpus": 1}, schema=Job.model_json_schema())
    assert p.resolve() == {"cpus": 1}
    with pytest.raises(ParamValidationError, match="^'x' is not of type 'integer'"):
        p.resolve({"cpus": "x"})


def test_false_subschema_is_a_validation_error() -> None:
    """Airflow crashes here with AttributeError ('bool' object has no attribute 'get')."""
    with pytest.raises(ParamValidationError, match="False schema does not allow 1"):
        Param({"x": 1}, type="object", properties={"x": False}).resolve()


def test_copy_of_param() -> None:
    p = Param([1], "d", type="array")
    c = copy.copy(p)
    assert (c.value, c.description, c.schema) == ([1], "d", {"type": "array"})


def test_notset_survives_copies_and_pickle() -> None:
    assert copy.copy(NOTSET) is NOTSET
    assert copy.deepcopy(NOTSET) is NOTSET
    assert pickle.loads(pickle.dumps(NOTSET)) is NOTSET
    assert not copy.deepcopy(Param(type="string")).has_value


# --- ParamsDict ----------------------------------------------------------------------------------


def test_getitem_resolves_and_plain_values_are_wrapped() -> None:
    pd = job_params()
    assert pd["project"] == "demo"
    assert isinstance(pd.get_param("project"), Param)
    assert pd.get_param("project").schema == {}
    assert pd["job1"] == {"requirements": {"cpus": 4}, "data_inputs": ["a"]}
    assert pd.get("missing", 7) == 7
    assert "job1" in pd and len(pd) == 2 and list(pd) == ["job1", "project"]
    assert all(isinstance(v, Param) for v in pd.values())
    assert all(isinstance(v, Param) for _, v in pd.items())


def test_getitem_raises_without_key_prefix() -> None:
    pd = ParamsDict({"a": Param(5, type="string")})
    with pytest.raises(ParamValidationError, match="^5 is not of type 'string'"):
        pd["a"]


def test_construction_does_not_validate() -> None:
    pd = ParamsDict({"a": Param(5, type="string"), "b": Param(type="string"), "c": 1})
    assert pd.dump() == {"a": None, "b": None, "c": 1}
    assert repr(pd) == "{'a': None, 'b': None, 'c': 1}"


def test_get_param_returns_raw_default_without_validation() -> None:
    pd = ParamsDict({"a": Param(5, type="string")})
    assert pd.get_param("a").value == 5


def test_validate_returns_plain_dict() -> None:
    out = job_params().validate()
    assert type(out) is dict
    assert out == {"job1": {"requirements": {"cpus": 4}, "data_inputs": ["a"]}, "project": "demo"}


def test_conf_replaces_whole_value_and_validate_message() -> None:
    """What DAG.create_dagrun does with a run's conf: deepcopy, update, validate."""
    pd = ParamsDict(
        {"job1": Param({"requirements": {}, "data_inputs": []}, schema=JOB_SCHEMA), "x": 3}
    )
    run = copy.deepcopy(pd)
    # Plain values for existing keys are validated on assignment already.
    with pytest.raises(ParamValidationError) as err:
        run.update({"job1": {"data_inputs": []}})
    assert str(err.value) == (
        "Invalid input for param job1: 'requirements' is a required property\n\n"
        "Failed validating 'required' in schema:\n"
        "    {'type': 'object',\n"
        "     'required': ['requirements', 'data_inputs'],\n"
        "     'properties': {'requirements': {'type': 'object'},\n"
        "                    'data_inputs': {'type': 'array'}}}\n\n"
        "On instance:\n"
        "    {'data_inputs': []}"
    )
    run.update({"job1": {"requirements": {"gpus": 1}, "data_inputs": []}, "extra": [1]})
    assert run.validate() == {
        "job1": {"requirements": {"gpus": 1}, "data_inputs": []},  # no deep merge with the default
        "x": 3,
        "extra": [1],  # undeclared conf keys are added, unvalidated
    }
    assert pd["job1"] == {"requirements": {}, "data_inputs": []}  # the original is untouched


def test_validate_message_names_the_param() -> None:
    pd = ParamsDict({"job1": Param({"data_inputs": []}, schema=JOB_SCHEMA)})
    with pytest.raises(
        ParamValidationError, match=r"^Invalid input for param job1: 'requirements' is a required property"
    ):
        pd.validate()
    pd = ParamsDict({"k": Param("", type="string", minLength=1)})
    with pytest.raises(ParamValidationError, match=r"^Invalid input for param k: '' should be non-empty"):
        pd.validate()
    pd = ParamsDict({"a": Param(type="string")})
    with pytest.raises(
        ParamValidationError, match="^Invalid input for param a: No value passed and Param has no default value$"
    ):
        pd.validate()


def test_setitem_validates_against_existing_schema() -> None:
    pd = job_params()
    param = pd.get_param("job1")
    with pytest.raises(ParamValidationError, match="^Invalid input for param job1: 'requirements' is a required"):
        pd["job1"] = {"data_inputs": []}
    assert pd.get_param("job1").value == {"requirements": {"cpus": 4}, "data_inputs": ["a"]}
    pd["job1"] = {"requirements": {}, "data_inputs": []}
    assert pd.get_param("job1") is param  # the same Param, with the new value
    assert param.value == {"requirements": {}, "data_inputs": []}


def test_setitem_param_replaces_and_unknown_key_is_plain_param() -> None:
    pd = job_params()
    pd["job1"] = Param(1, type="integer")
    assert pd.get_param("job1").schema == {"type": "integer"}
    pd["new"] = 5
    assert type(pd.get_param("new")) is Param
    assert pd.get_param("new").schema == {}
    assert pd["new"] == 5


def test_suppress_exception() -> None:
    pd = ParamsDict({"a": Param("s", type="string")}, suppress_exception=True)
    pd["a"] = 7  # rejected silently, the old value stays
    assert pd.get_param("a").value == "s"
    pd.get_param("a").value = 7
    assert pd["a"] is None
    assert pd.validate() == {"a": None}


def test_update_from_params_dict_takes_its_params() -> None:
    dag_params = ParamsDict({"a": Param(1, type="integer")})
    task_params = ParamsDict({"a": Param("x", type="string"), "b": 2})
    dag_params.update(task_params)
    assert dag_params.get_param("a") is task_params.get_param("a")
    assert dag_params.validate() == {"a": "x", "b": 2}
    dag_params.update(c=3)
    assert dag_params["c"] == 3


def test_deepcopy_is_independent() -> None:
    pd = ParamsDict({"job1": Param({"requirements": {"cpus": 4}}, type="object"), "n": 1}, suppress_exception=True)
    c = copy.deepcopy(pd)
    assert c.suppress_exception is True
    assert c.get_param("job1") is not pd.get_param("job1")
    c["job1"]["requirements"]["cpus"] = 99
    c["n"] = 2
    assert pd["job1"] == {"requirements": {"cpus": 4}}
    assert pd["n"] == 1


def test_shallow_copy_shares_params() -> None:
    pd = job_params()
    c = copy.copy(pd)
    assert c.get_param("job1") is pd.get_param("job1")
    del c["project"]
    assert "project" in pd and "project" not in c


def test_equality_and_bool() -> None:
    assert ParamsDict({"a": 1}) == {"a": 1}
    assert ParamsDict({"a": 1}) == ParamsDict({"a": Param(1)})
    assert ParamsDict({"a": 1}) != {"a": 2}
    assert not ParamsDict()
    assert ParamsDict({"a": None})


def test_validation_error_names_the_field_inside_the_param():
    """Beyond Airflow's text: the bad value's path, dotted as in lexis-prefect's other errors."""
    params = ParamsDict(
        {"job1": Param({"tasks": [{"walltime": 1}]}, schema={
            "type": "object",
            "properties": {"tasks": {"type": "array", "items": {
                "type": "object", "properties": {"walltime": {"type": "integer", "exclusiveMinimum": 0}}}}},
        })}
    )
    with pytest.raises(ParamValidationError) as excinfo:
        params["job1"] = {"tasks": [{"walltime": 1}, {"walltime": -1}]}
    assert str(excinfo.value).startswith("Invalid input for param job1: -1 is less than or equal to the minimum of 0")
    assert excinfo.value.field == "job1.tasks[1].walltime"
    assert excinfo.value.reason == "-1 is less than or equal to the minimum of 0"
