"""SingleHPCJob: the seed validates unchanged; malformed jobs fail naming the field; the schema is portable."""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import pytest
from pydantic import ValidationError, WithJsonSchema

from lexis_prefect.exceptions import JobValidationError
from lexis_prefect.models.job import SEED_JOB, SingleHPCJob, job_relative

SEED_DAG = Path(__file__).parents[1] / "flows" / "dags" / "lexis_hpc_simple.py"  # the seed file, byte for byte
SHARED_SEED = Path(__file__).parents[2] / "shared" / "seed" / "lexis_hpc_simple.py"


def seed_job1_from_dag(path: Path) -> dict[str, Any]:
    """The literal default of `Param({...}, schema=SingleHPCJob)` in the seed DAG file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Param" and node.args:
            if isinstance(node.args[0], ast.Dict):
                return ast.literal_eval(node.args[0])
    raise AssertionError(f"no Param({{...}}) in {path}")


def seed() -> dict[str, Any]:
    return copy.deepcopy(SEED_JOB)


# -- the seed ------------------------------------------------------------------------------


def test_seed_constant_is_the_seed_dags_job1_default():
    assert seed_job1_from_dag(SEED_DAG) == SEED_JOB


@pytest.mark.skipif(not SHARED_SEED.exists(), reason="../shared is only beside the repository in CI")
def test_vendored_seed_dag_matches_shared_seed():
    assert SEED_DAG.read_bytes() == SHARED_SEED.read_bytes()


def test_seed_job_validates_unchanged():
    job = SingleHPCJob.model_validate(seed())
    assert job.model_dump() == SEED_JOB
    assert job.requirements.tasks[0].walltime_limit == 3600
    assert job.requirements.locations[0].location_name == "Karolina"


def test_seed_job_round_trips_through_json():
    job = SingleHPCJob.model_validate(seed())
    assert SingleHPCJob.model_validate_json(job.model_dump_json()) == job


def test_optional_fields_take_documented_defaults():
    data = seed()
    del data["requirements"]["policy"], data["data_inputs"], data["data_outputs"]
    del data["requirements"]["tasks"][0]["template_parameter_values"]
    job = SingleHPCJob.model_validate(data)
    assert job.requirements.policy == "preferred"
    assert job.data_inputs == [] and job.data_outputs == []
    assert job.requirements.tasks[0].template_parameter_values == {}


def test_template_values_keep_their_json_types():
    data = seed()
    data["requirements"]["tasks"][0]["template_parameter_values"] = {"s": "42", "i": 42, "f": 0.5, "b": True}
    values = SingleHPCJob.model_validate(data).requirements.tasks[0].template_parameter_values
    assert values == {"s": "42", "i": 42, "f": 0.5, "b": True}
    assert [type(v) for v in values.values()] == [str, int, float, bool]


def test_failover_with_several_locations_is_valid():
    data = seed()
    data["requirements"]["policy"] = "failover"
    data["requirements"]["locations"].append({"location_name": "Barbora", "location_resource": "r"})
    assert [loc.location_name for loc in SingleHPCJob.model_validate(data).requirements.locations] == [
        "Karolina",
        "Barbora",
    ]


@pytest.mark.parametrize("path", ["/", "data", "/data/in", "a/./b", "results/", "a..b", "..hidden"])
def test_paths_inside_the_job_directory_are_accepted(path):
    data = seed()
    data["data_inputs"][0]["target_path"] = path
    assert SingleHPCJob.model_validate(data).data_inputs[0].target_path == path


@pytest.mark.parametrize(
    ("path", "relative"), [("/", "."), ("/a//b/", "a/b"), ("data", "data"), ("./x/./y", "x/y")]
)
def test_job_relative_normalises(path, relative):
    assert job_relative(path) == relative


# -- malformed jobs ------------------------------------------------------------------------


def setter(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets `value` at a dotted path (`requirements.tasks.0.max_cores`)."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def deleter(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


def appender(path: str, item: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path.split("."):
            node = node[part]
        node.append(copy.deepcopy(item))

    return mutate


TASK = SEED_JOB["requirements"]["tasks"][0]
INPUT = SEED_JOB["data_inputs"][0]

# (id, mutation, field path named in the message, a fragment of pydantic's message)
MALFORMED = [
    ("no-requirements", deleter("requirements"), "requirements", "Field required"),
    ("empty-locations", setter("requirements.locations", []), "requirements.locations", "at least 1"),
    ("empty-tasks", setter("requirements.tasks", []), "requirements.tasks", "at least 1"),
    ("unknown-policy", setter("requirements.policy", "fastest"), "requirements.policy", "'preferred' or 'failover'"),
    ("zero-walltime", setter("requirements.tasks.0.walltime_limit", 0), "requirements.tasks[0].walltime_limit", "greater than 0"),
    ("negative-walltime", setter("requirements.tasks.0.walltime_limit", -1), "requirements.tasks[0].walltime_limit", "greater than 0"),
    ("string-walltime", setter("requirements.tasks.0.walltime_limit", "3600"), "requirements.tasks[0].walltime_limit", "valid integer"),
    ("float-walltime", setter("requirements.tasks.0.walltime_limit", 3600.5), "requirements.tasks[0].walltime_limit", "valid integer"),
    ("bool-walltime", setter("requirements.tasks.0.walltime_limit", True), "requirements.tasks[0].walltime_limit", "valid integer"),
    ("zero-cores", setter("requirements.tasks.0.max_cores", 0), "requirements.tasks[0].max_cores", "greater than 0"),
    ("string-cores", setter("requirements.tasks.0.max_cores", "128"), "requirements.tasks[0].max_cores", "valid integer"),
    ("unknown-key-requirements", setter("requirements.walltime", 10), "requirements.walltime", "Extra inputs are not permitted"),
    ("unknown-key-top", setter("job2", {}), "job2", "Extra inputs are not permitted"),
    ("unknown-key-task", setter("requirements.tasks.0.walltime", 5), "requirements.tasks[0].walltime", "Extra inputs"),
    ("unknown-key-location", setter("requirements.locations.0.cluster", "x"), "requirements.locations[0].cluster", "Extra inputs"),
    ("missing-location-name", deleter("requirements.locations.0.location_name"), "requirements.locations[0].location_name", "Field required"),
    ("empty-location-name", setter("requirements.locations.0.location_name", ""), "requirements.locations[0].location_name", "at least 1 character"),
    ("int-job-name", setter("requirements.job_name", 123), "requirements.job_name", "valid string"),
    ("missing-job-name", deleter("requirements.job_name"), "requirements.job_name", "Field required"),
    ("null-project", setter("requirements.project_shortname", None), "requirements.project_shortname", "valid string"),
    ("list-template-values", setter("requirements.tasks.0.template_parameter_values", ["a"]), "requirements.tasks[0].template_parameter_values", "valid dictionary"),
    ("nested-template-value", setter("requirements.tasks.0.template_parameter_values.input_param", {"a": 1}), "requirements.tasks[0].template_parameter_values.input_param", "valid string"),
    ("tasks-not-a-list", setter("requirements.tasks", TASK), "requirements.tasks", "valid list"),
    ("second-task-bad", appender("requirements.tasks", {**TASK, "node_type_name": ""}), "requirements.tasks[1].node_type_name", "at least 1 character"),
    ("escaping-target-path", setter("data_inputs.0.target_path", "../x"), "data_inputs[0].target_path", "'..' segment"),
    ("deep-escaping-target-path", setter("data_inputs.0.target_path", "a/../../etc"), "data_inputs[0].target_path", "'..' segment"),
    ("escaping-dataset-path", setter("data_inputs.0.source.info.path", "/../secret"), "data_inputs[0].source.info.path", "'..' segment"),
    ("missing-dataset-id", deleter("data_inputs.0.source.info.dataset_id"), "data_inputs[0].source.info.dataset_id", "Field required"),
    ("missing-source", deleter("data_inputs.0.source"), "data_inputs[0].source", "Field required"),
    ("escaping-source-path", setter("data_outputs.0.source_path", "../../"), "data_outputs[0].source_path", "'..' segment"),
    ("unknown-access", setter("data_outputs.0.target.info.access", "everyone"), "data_outputs[0].target.info.access", "'user', 'project' or 'public'"),
    ("empty-title", setter("data_outputs.0.target.info.title", ""), "data_outputs[0].target.info.title", "at least 1 character"),
    ("trailing-parent-output-path", setter("data_outputs.0.target.info.path", "x/.."), "data_outputs[0].target.info.path", "'..' segment"),
    ("outputs-not-a-list", setter("data_outputs", "/"), "data_outputs", "valid list"),
    ("empty-target-path", setter("data_inputs.0.target_path", ""), "data_inputs[0].target_path", "at least 1 character"),
    ("second-input-extra-key", appender("data_inputs", {**INPUT, "mode": "copy"}), "data_inputs[1].mode", "Extra inputs"),
    ("unknown-key-output-info", setter("data_outputs.0.target.info.license", "CC"), "data_outputs[0].target.info.license", "Extra inputs"),
    ("int-location-resource", setter("requirements.locations.0.location_resource", 7), "requirements.locations[0].location_resource", "valid string"),
    ("nul-in-path", setter("data_inputs.0.target_path", "a\x00b"), "data_inputs[0].target_path", "NUL"),
]


def malformed(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = seed()
    mutate(data)
    return data


def test_there_are_at_least_30_distinct_malformed_variants():
    assert len({case[0] for case in MALFORMED}) >= 30


@pytest.mark.parametrize(("mutate", "path", "fragment"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_job_is_rejected_naming_the_field(mutate, path, fragment):
    with pytest.raises(JobValidationError) as caught:
        SingleHPCJob.model_validate(malformed(mutate))
    lines = str(caught.value).splitlines()[1:]
    named = [line.strip() for line in lines if line.strip().startswith(f"{path}:") or line.strip().startswith(f"{path}.")]
    assert named, f"{path} not named in:\n{caught.value}"
    assert any(fragment in line for line in named), f"{fragment!r} not in {named}"


@pytest.mark.parametrize("mutate", [c[1] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_job_is_rejected_by_the_exported_json_schema(mutate):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(malformed(mutate), SingleHPCJob.model_json_schema())


def test_job_validation_error_is_a_pydantic_validation_error_with_bracketed_locations():
    with pytest.raises(ValidationError) as caught:
        SingleHPCJob.model_validate(malformed(setter("requirements.tasks.0.walltime_limit", -5)))
    assert isinstance(caught.value, JobValidationError)
    assert caught.value.errors()[0]["loc"] == ("requirements", "tasks[0]", "walltime_limit")
    assert str(caught.value).splitlines()[1].strip() == (
        "requirements.tasks[0].walltime_limit: Input should be greater than 0 (got -5)"
    )


def test_every_problem_is_reported_at_once():
    data = malformed(setter("requirements.policy", "x"))
    setter("data_inputs.0.target_path", "../up")(data)
    with pytest.raises(JobValidationError) as caught:
        SingleHPCJob.model_validate(data)
    assert caught.value.error_count() == 2


def test_json_input_errors_name_the_field_too():
    with pytest.raises(JobValidationError, match=r"requirements\.tasks\[0\]\.max_cores"):
        SingleHPCJob.model_validate_json(json.dumps(malformed(setter("requirements.tasks.0.max_cores", -1))))


def test_non_object_job_is_rejected():
    with pytest.raises(JobValidationError, match="valid dictionary"):
        SingleHPCJob.model_validate(["not", "a", "job"])


def test_models_are_immutable():
    job = SingleHPCJob.model_validate(seed())
    with pytest.raises(ValidationError, match="frozen"):
        job.requirements.job_name = "changed"  # type: ignore[misc]


# -- the exported schema -------------------------------------------------------------------


def test_schema_is_self_contained():
    text = json.dumps(SingleHPCJob.model_json_schema())
    assert "$ref" not in text and "$defs" not in text
    jsonschema.Draft202012Validator.check_schema(SingleHPCJob.model_json_schema())


def test_schema_snapshot_of_the_contract():
    """The parts of the schema forms and contracts rely on; a change here is an API change."""
    schema = SingleHPCJob.model_json_schema()
    requirements = schema["properties"]["requirements"]
    task = requirements["properties"]["tasks"]["items"]
    assert schema["required"] == ["requirements"]
    assert schema["additionalProperties"] is False
    assert requirements["required"] == ["job_name", "project_shortname", "locations", "tasks"]
    assert requirements["properties"]["policy"]["enum"] == ["preferred", "failover"]
    assert requirements["properties"]["locations"]["minItems"] == 1
    assert task["properties"]["walltime_limit"] == {
        "description": "Wall-time limit in seconds.",
        "exclusiveMinimum": 0,
        "title": "Walltime Limit",
        "type": "integer",
    }
    assert set(task["required"]) == {"command_template_name", "node_type_name", "walltime_limit", "max_cores"}
    target_path = schema["properties"]["data_inputs"]["items"]["properties"]["target_path"]
    assert target_path["type"] == "string" and "pattern" in target_path


def test_schema_works_as_an_airflow_param_schema():
    """Airflow's Param.resolve is `jsonschema.validate(value, schema, format_checker=FormatChecker())`."""
    schema = SingleHPCJob.model_json_schema()
    jsonschema.validate(seed(), schema, format_checker=jsonschema.FormatChecker())
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate(malformed(setter("requirements.tasks.0.max_cores", 0)), schema)
    assert list(caught.value.absolute_path) == ["requirements", "tasks", 0, "max_cores"]


def test_schema_works_embedded_in_a_prefect_parameter_schema():
    """As the Airflow shim will embed it: `Annotated[dict, WithJsonSchema(schema)]`, enforced by the server."""
    from prefect import flow
    from prefect.utilities.schema_tools.validation import ValidationError as PrefectValidationError
    from prefect.utilities.schema_tools.validation import validate

    @flow
    def dag_flow(job1: Annotated[dict, WithJsonSchema(SingleHPCJob.model_json_schema())]) -> None:
        pass

    schema = dag_flow.parameters.model_dump()
    assert validate({"job1": seed()}, schema, raise_on_error=True) == []
    with pytest.raises(PrefectValidationError, match=r"job1\.requirements\.tasks\[0\]\.walltime_limit"):
        validate({"job1": malformed(setter("requirements.tasks.0.walltime_limit", 0))}, schema, raise_on_error=True)


def test_model_works_as_a_native_prefect_flow_parameter():
    from prefect import flow
    from prefect.exceptions import ParameterTypeError
    from prefect.utilities.schema_tools.validation import validate

    @flow
    def native(job1: SingleHPCJob) -> None:
        pass

    schema = native.parameters.model_dump()
    assert validate({"job1": seed()}, schema, raise_on_error=True) == []
    assert isinstance(native.validate_parameters({"job1": seed()})["job1"], SingleHPCJob)
    with pytest.raises(ParameterTypeError, match="walltime_limit"):
        native.validate_parameters({"job1": malformed(setter("requirements.tasks.0.walltime_limit", -1))})


def test_within_zone_turns_a_stage_out_answer_into_the_path_delete_takes():
    from lexis_prefect.models.ddi import within_zone

    assert within_zone("/IT4ILexisZone/project/proj0a/1234") == "project/proj0a/1234"
    for bad in ("project/proj0a/1234", "/IT4ILexisZone", ""):
        with pytest.raises(ValueError):
            within_zone(bad)
