"""Bad-input fuzz: generated malformed `job1` values are refused, naming the field, before any LEXIS call.

Three ways in: the native flow (Prefect's parameter check, and real flow calls), the Airflow shim's
conf (`dag.resolve_params`), and the deployment API of a Prefect server (`create_flow_run_from_deployment`).
The generator is deterministic (a seeded `random.Random`) and knows, for each value, which field it broke.
A dedicated sandbox logs every request: across the whole module it must receive none outside its
control API.
"""

from __future__ import annotations

import copy
import json
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.exceptions import ParameterTypeError, PrefectHTTPStatusError
from pydantic import SecretStr

from lexis_prefect.airflow.exceptions import ParamValidationError
from lexis_prefect.airflow.loader import load_dag
from lexis_prefect.models.job import SEED_JOB
from lexis_prefect.sandbox import SandboxProcess
from tests.e2e.conftest import FLOWS, load_flow_module

lexis_hpc_simple = load_flow_module("lexis_hpc_simple").lexis_hpc_simple
SEED_DAG = FLOWS / "dags" / "lexis_hpc_simple.py"

FUZZ_SEED = 8  # issue 8
MIN_CASES = 200


# -- the generator -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    what: str  # how the value was broken, e.g. "requirements.tasks[0].walltime_limit=-3"
    field: str  # the field it broke, bracketed: "job1.requirements.tasks[0].walltime_limit"
    job1: Any
    model_only: bool = False  # a rule only the pydantic model enforces (NUL in a path), not the JSON schema
    server_nullable: bool = False  # null for an optional field without a schema default: see NULLABLE_ON_THE_SERVER


Path = tuple[str | int, ...]

NAMES = [  # every Name-typed string of the seed job: 1..200 characters
    ("requirements", "job_name"),
    ("requirements", "project_shortname"),
    ("requirements", "locations", 0, "location_name"),
    ("requirements", "locations", 0, "location_resource"),
    ("requirements", "tasks", 0, "command_template_name"),
    ("requirements", "tasks", 0, "node_type_name"),
    ("data_inputs", 0, "source", "location"),
    ("data_inputs", 0, "source", "resource"),
    ("data_inputs", 0, "source", "info", "dataset_id"),
    ("data_outputs", 0, "target", "location"),
    ("data_outputs", 0, "target", "resource"),
    ("data_outputs", 0, "target", "info", "title"),
    ("data_outputs", 0, "target", "info", "dataset_type"),
]
PATHS = [  # every RelativePath: 1..4096 characters, no '..' segment, no NUL
    ("data_inputs", 0, "source", "info", "path"),
    ("data_inputs", 0, "target_path"),
    ("data_outputs", 0, "source_path"),
    ("data_outputs", 0, "target", "info", "path"),
]
POSITIVE_INTS = [("requirements", "tasks", 0, "walltime_limit"), ("requirements", "tasks", 0, "max_cores")]
ENUMS = {
    ("requirements", "policy"): ["preferred", "failover"],
    ("data_outputs", 0, "target", "info", "access"): ["user", "project", "public"],
}
#: Every object of the seed job, with its required keys.
OBJECTS: dict[Path, list[str]] = {
    (): ["requirements"],
    ("requirements",): ["job_name", "project_shortname", "locations", "tasks"],
    ("requirements", "locations", 0): ["location_name", "location_resource"],
    ("requirements", "tasks", 0): ["command_template_name", "node_type_name", "walltime_limit", "max_cores"],
    ("data_inputs", 0): ["source", "target_path"],
    ("data_inputs", 0, "source"): ["location", "resource", "info"],
    ("data_inputs", 0, "source", "info"): ["dataset_id"],
    ("data_outputs", 0): ["source_path", "target"],
    ("data_outputs", 0, "target"): ["location", "resource", "info"],
    ("data_outputs", 0, "target", "info"): ["access", "title"],
}
LISTS = {  # list -> may it be empty?
    ("requirements", "locations"): False,
    ("requirements", "tasks"): False,
    ("data_inputs",): True,
    ("data_outputs",): True,
}
TEMPLATE_VALUES = ("requirements", "tasks", 0, "template_parameter_values")
#: Optional fields whose schema has no `default` (pydantic's default_factory): the Prefect server's schema
#: preprocessing (`_fix_null_typing`) makes them nullable, so it accepts `null` there; the flow's own
#: parameter check refuses it later, on the worker.
NULLABLE_ON_THE_SERVER = {("data_inputs",), ("data_outputs",), TEMPLATE_VALUES}


def field_name(path: Path) -> str:
    text = "job1"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _set(job: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    node = job
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return job


def _delete(job: Any, path: Path) -> Any:
    node = job
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return job


def _get(job: Any, path: Path) -> Any:
    for part in path:
        job = job[part]
    return job


def malformed_jobs(seed: int = FUZZ_SEED) -> list[Case]:
    """Distinct malformed `job1` values, each broken in one place (random choices from `seed`)."""
    rng = random.Random(seed)
    cases: list[Case] = []

    def add(what: str, path: Path, mutate, model_only: bool = False, server_nullable: bool = False) -> None:
        job = mutate(copy.deepcopy(SEED_JOB))
        cases.append(Case(what, field_name(path), job, model_only, server_nullable))

    def put(path: Path, value: Any, model_only: bool = False) -> None:
        nullable = value is None and path in NULLABLE_ON_THE_SERVER
        add(f"{field_name(path)}={value!r:.40}", path, lambda job: _set(job, path, value), model_only, nullable)

    def wrong_types(path: Path, right: type) -> Iterator[Any]:
        pool = {
            str: rng.choice(["x", "3600", "true", "Karolina", ""]),
            int: rng.randint(-10**6, 10**6),
            float: round(rng.uniform(-1e3, 1e3), 3) + 0.5,
            bool: rng.choice([True, False]),
            type(None): None,
            list: rng.choice([[], ["a"], [1, 2], [{}]]),
            dict: rng.choice([{}, {"a": 1}, {"value": "x"}]),
        }
        for kind, value in pool.items():
            if kind is not right and not (right is int and kind is float and float(value).is_integer()):
                yield value

    def junk_key() -> str:
        return rng.choice(["walltime", "cluster", "mode", "license", "x", "jobName", "priority", "comment"]) + (
            f"_{rng.randint(0, 999)}" if rng.random() < 0.5 else ""
        )

    # The job itself is not an object.
    for value in ["not a job", 42, 3.5, True, None, [], [SEED_JOB], "{}"]:
        add(f"job1={value!r:.30}", (), lambda job, v=value: v)
    add("job1={}", (), lambda job: {})

    for path in NAMES:
        for value in wrong_types(path, str):
            put(path, value)
        put(path, "")
        put(path, "n" * rng.randint(201, 5000))  # Name is capped at 200 characters
    for path in PATHS:
        for value in wrong_types(path, str):
            put(path, value)
        put(path, "")
        for value in ["..", "../x", "a/../b", "a/..", "/..", "/a/b/../../..", rng.choice(["x/../../etc/passwd", "../../"])]:
            put(path, value)
        for value in ["a\x00b", "\x00", "/results\x00.txt"]:
            put(path, value, model_only=True)
        put(path, "p/" * 2100)  # over 4096 characters
    for path in POSITIVE_INTS:
        for value in [0, -1, -rng.randint(2, 10**9), "3600", 3600.5, True, None, [3600], {"seconds": 3600}]:
            put(path, value)
    for path, allowed in ENUMS.items():
        for value in [allowed[0].upper(), allowed[0].title(), "", rng.choice(["any", "everyone", "random", "first"]), 1, None, allowed]:
            put(path, value)
    for path, required in OBJECTS.items():
        for key in required:
            add(f"{field_name(path + (key,))} missing", path + (key,), lambda job, p=path + (key,): _delete(job, p))
        key = junk_key()
        add(f"{field_name(path + (key,))} unknown", path + (key,), lambda job, p=path + (key,): _set(job, p, rng.randint(0, 9)))
        if path:
            for value in ["obj", 7, None, [_get(SEED_JOB, path)]]:
                put(path, value)
    for path, may_be_empty in LISTS.items():
        if not may_be_empty:
            put(path, [])
        for value in ["x", {"0": "x"}, 1, None]:
            put(path, value)
        put(path + (0,), "not an object")
        # A second element, broken: the index must be named too.
        item = copy.deepcopy(_get(SEED_JOB, path + (0,)))
        key = junk_key()
        item[key] = True
        add(f"{field_name(path + (1, key))} unknown", path + (1, key), lambda job, p=path, i=item: _get(job, p).append(i) or job)
    for value in ["input_param=value", ["value"], 1, None]:
        put(TEMPLATE_VALUES, value)
    for value in [["a"], {"nested": 1}, None]:
        put(TEMPLATE_VALUES + ("input_param",), value)
    add(f"{field_name(TEMPLATE_VALUES)} empty key", TEMPLATE_VALUES, lambda job: _set(job, TEMPLATE_VALUES + ("",), "v"))

    unique = {json.dumps(case.job1, sort_keys=True): case for case in cases}
    assert len(unique) == len(cases), "the generator made duplicates"
    return cases


CASES = malformed_jobs()
SCHEMA_CASES = [case for case in CASES if not case.model_only]
MODEL_ONLY_CASES = [case for case in CASES if case.model_only]
SERVER_CASES = [case for case in SCHEMA_CASES if not case.server_nullable]
SERVER_NULLABLE_CASES = [case for case in SCHEMA_CASES if case.server_nullable]


def test_the_generator_makes_at_least_200_distinct_cases():
    assert len(CASES) >= MIN_CASES
    assert len(SERVER_CASES) >= MIN_CASES
    assert malformed_jobs() == CASES  # deterministic
    print(f"\n{len(CASES)} malformed job1 values ({len(MODEL_ONLY_CASES)} model-only)")


# -- naming the field ----------------------------------------------------------------------------


def _bracketed(path: str) -> str:
    """Pydantic's `job1.tasks.0.x` as `job1.tasks[0].x`."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", path)


def names_field(case: Case, reported: list[str], message: str) -> bool:
    """Is `case.field` named: exactly, or deeper (a union's branch), or as its parent plus its key in the text?

    JSON Schema reports a missing or unknown key at its object (`'tasks' is a required property`).
    """
    expected = case.field
    for path in map(_bracketed, reported):
        if path == expected or path.startswith((expected + ".", expected + "[")):
            return True
        leaf = expected[len(path):]
        if leaf.startswith((".", "[")) and expected.startswith(path):
            key = re.match(r"\.([^.\[]*)|\[(\d+)\]", leaf)
            name = key.group(1) if key.group(1) is not None else key.group(2)
            if f"'{name}'" in message or (name == "" and "non-empty" in message):
                return True
    return False


# -- a sandbox that counts its requests -----------------------------------------------------------

_REQUEST_LINE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD) (/\S*) (\d{3}|-) [\d.]+ ms")


def logged_requests(sandbox: SandboxProcess) -> list[str]:
    return [" ".join(m) for m in _REQUEST_LINE.findall(sandbox.log_file.read_text(errors="replace"))]


def service_requests(sandbox: SandboxProcess) -> list[str]:
    """Requests to the emulated AAI, DDI and HEAppE (not the control API) the sandbox has logged."""
    return [line for line in logged_requests(sandbox) if not line.split()[1].startswith("/_sandbox")]


@pytest.fixture(scope="module")
def counting_sandbox():
    with SandboxProcess("--log-requests") as sandbox:
        sandbox.settings(queue_seconds=0.1, staging_seconds=0.1)
        yield sandbox
    assert not service_requests(sandbox), "the sandbox received requests during the fuzz"


@pytest.fixture
def fuzz_env(counting_sandbox, monkeypatch, prefect_harness) -> SandboxProcess:
    monkeypatch.delenv("LEXIS_CREDENTIALS_BLOCK", raising=False)
    for name, value in counting_sandbox.environment().items():
        monkeypatch.setenv(name, value)
    # The log does record requests (these control calls), so an empty count means none were made.
    # (The sandbox writes its log line after answering: give it a moment.)
    deadline = time.monotonic() + 10
    while not any(" /_sandbox/config " in line for line in logged_requests(counting_sandbox)):
        assert time.monotonic() < deadline, "the sandbox's request log records nothing"
        time.sleep(0.05)
    assert not service_requests(counting_sandbox)
    return counting_sandbox


# -- 1. the native flow ---------------------------------------------------------------------------


def _parameter_error_paths(error: Exception) -> list[str]:
    return re.findall(r"^ +- (\S*?): ", str(error), flags=re.MULTILINE)


async def test_the_native_flow_refuses_each_malformed_job_naming_the_field(fuzz_env):
    unnamed = []
    for case in CASES:
        with pytest.raises(ParameterTypeError) as caught:
            lexis_hpc_simple.validate_parameters({"access_token": "x", "job1": case.job1})
        if not names_field(case, _parameter_error_paths(caught.value), str(caught.value)):
            unnamed.append(f"{case.what}: {caught.value}")
    assert not unnamed, "\n".join(unnamed[:10])

    # Real flow calls on the Prefect server, with a real LEXIS configuration: refused before any call.
    token = SecretStr("a-token-that-is-never-sent")
    picked = random.Random(FUZZ_SEED).sample(CASES, 6) + MODEL_ONLY_CASES[:1]
    for case in picked:
        state = await lexis_hpc_simple(access_token=token, job1=case.job1, return_state=True)
        assert state.is_failed(), (case.what, state)
        with pytest.raises(ParameterTypeError) as caught:
            await state.result()
        assert names_field(case, _parameter_error_paths(caught.value), str(caught.value)), (case.what, str(caught.value))
    assert not service_requests(fuzz_env)
    print(f"\nnative flow: {len(CASES)} values refused by validate_parameters, {len(picked)} by real flow calls")


# -- 2. the Airflow shim's conf ------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_dag():
    return load_dag(SEED_DAG)


def test_the_shim_refuses_each_malformed_conf_naming_the_field(seed_dag, fuzz_env):
    unnamed = []
    for case in SCHEMA_CASES:
        with pytest.raises(ParamValidationError) as caught:
            seed_dag.resolve_params({"job1": case.job1})
        if not names_field(case, [caught.value.field or ""], caught.value.reason or str(caught.value)):
            unnamed.append(f"{case.what}: field={caught.value.field} reason={caught.value.reason}")
    assert not unnamed, "\n".join(unnamed[:10])
    assert not service_requests(fuzz_env)
    print(f"\nshim conf: {len(SCHEMA_CASES)} values refused")


def test_the_shim_refuses_a_nul_in_a_path(seed_dag):
    """The JSON schema's path pattern excludes NUL too (it once did not: only the model refused it)."""
    for case in MODEL_ONLY_CASES:
        with pytest.raises(ParamValidationError):
            seed_dag.resolve_params({"job1": case.job1})


# -- 3. the deployment API ------------------------------------------------------------------------


async def _deployment(name: str):
    await Secret(value="a-token-that-is-never-sent").save("fuzz-token", overwrite=True)
    deployment = await lexis_hpc_simple.to_deployment(name=name)
    return await deployment.apply()


TOKEN_REF = {"$ref": {"block_document_slug": "secret/fuzz-token"}}


async def _runs_of(client, deployment_id) -> int:
    return len(await client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))))


async def test_the_deployment_api_refuses_each_malformed_job_naming_the_field(fuzz_env):
    deployment_id = await _deployment("fuzz")
    unnamed, accepted = [], []
    async with get_client() as client:
        for case in SERVER_CASES:
            try:
                await client.create_flow_run_from_deployment(deployment_id, parameters={"access_token": TOKEN_REF, "job1": case.job1})
            except PrefectHTTPStatusError as refused:
                response = refused.response
            else:
                accepted.append(case.what)
                continue
            assert response.status_code in (409, 422), (case.what, response.status_code, response.text)
            detail = str(response.json().get("detail"))
            reported = re.findall(r"Validation failed for field '([^']*)'", detail)
            if not names_field(case, reported, detail):
                unnamed.append(f"{case.what}: {detail}")
        runs = await _runs_of(client, deployment_id)
    assert not accepted, f"{len(accepted)} malformed values accepted: {accepted}"
    assert not unnamed, "\n".join(unnamed[:10])
    assert runs == 0, f"{runs} flow runs were created from refused parameters"
    assert not service_requests(fuzz_env)
    print(f"\ndeployment API: {len(SERVER_CASES)} values refused, 0 flow runs")


@pytest.mark.parametrize(
    "cases",
    [MODEL_ONLY_CASES, SERVER_NULLABLE_CASES],
    ids=["NUL in a path (the schema's path pattern)", "null for an optional list or dict (the schema's defaults)"],
)
async def test_the_deployment_api_refuses_what_the_schema_once_let_through(prefect_harness, cases):
    """Both were accepted by the server and refused only by the model on the worker, before the schema said so."""
    deployment_id = await _deployment("fuzz-schema-gaps")
    async with get_client() as client:
        for case in cases:
            with pytest.raises(PrefectHTTPStatusError):
                await client.create_flow_run_from_deployment(deployment_id, parameters={"access_token": TOKEN_REF, "job1": case.job1})
