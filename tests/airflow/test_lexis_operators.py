"""The LEXIS operators at parse time and without a sandbox: ids, edges, job rendering, Finish's rule.

End-to-end runs on the sandbox are in tests/e2e/test_lexis_dags.py and test_lexis_deployment.py.
"""

from __future__ import annotations

import asyncio

import pytest

from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.exceptions import AirflowFailException, ParamValidationError
from lexis_prefect.airflow.lexis import (
    FinishOperator,
    HpcJobStepOperator,
    LexisAAIOperator,
    LexisAAIStopKeeperOperator,
    SingleHPCJob,
    build_hpc_job_step,
)
from lexis_prefect.airflow.operators import EmptyOperator
from lexis_prefect.airflow.params import Param
from lexis_prefect.airflow.trigger_rule import TriggerRule
from lexis_prefect.hpc import cancel_hpc_jobs
from lexis_prefect.models.job import SEED_JOB


def seed_shaped_dag() -> tuple[DAG, dict]:
    with DAG("lexis_like", params={"access_token": Param("", type="string"), "job1": Param(SEED_JOB, schema=SingleHPCJob)},
             render_template_as_native_obj=True) as dag:
        ref_token = LexisAAIOperator(task_id="refresh_token_task", access_token="{{ params.access_token }}")
        stop = LexisAAIStopKeeperOperator(trigger_rule=TriggerRule.ALL_DONE)
        job = build_hpc_job_step(dag=dag, group_id="job", job_requirements="{{ params.job1['requirements'] }}",
                                 data_inputs="{{ params.job1['data_inputs'] }}", data_outputs="{{ params.job1['data_outputs'] }}")
        finish = FinishOperator(task_id="finish")
        ref_token >> job >> stop >> finish
    return dag, {"ref_token": ref_token, "stop": stop, "job": job, "finish": finish}


def test_ids_edges_and_hooks_of_the_seed_shape():
    dag, ops = seed_shaped_dag()
    assert ops["stop"].task_id == "ref_token_stop"
    assert dag.task_ids == ["refresh_token_task", "ref_token_stop", "job.hpc_job", "finish"]
    assert dag.get_task("job.hpc_job").upstream_task_ids == {"refresh_token_task"}
    assert ops["stop"].upstream_task_ids == {"job.hpc_job"}
    assert cancel_hpc_jobs in dag.on_cancellation_hooks  # a user's cancel cancels the HEAppE jobs
    # a crash leaves them running for a rerun (crash is not cancel), unless LEXIS_CANCEL_ON_CRASH
    assert cancel_hpc_jobs not in dag.on_crashed_hooks
    assert [h.__name__ for h in dag.on_crashed_hooks] == ["hpc_jobs_on_crash"]


def test_single_hpc_job_is_a_schema_dict_that_validates_the_seed_job():
    assert isinstance(SingleHPCJob, dict) and "$defs" not in SingleHPCJob
    bad = {**SEED_JOB, "requirements": {**SEED_JOB["requirements"], "policy": "sometimes"}}
    with pytest.raises(ParamValidationError) as excinfo:
        Param(bad, schema=SingleHPCJob).resolve()
    assert excinfo.value.field == ".requirements.policy"


def test_the_access_token_takes_only_a_secret_block_reference_through_the_server():
    from prefect.utilities.schema_tools.validation import ValidationError, validate

    dag, _ = seed_shaped_dag()
    schema = dag.parameters.model_dump()
    reference = {"$ref": {"block_document_slug": "secret/lexis-access-token"}}
    validate({"access_token": reference}, schema, raise_on_error=True, preprocess=True)  # what the server runs
    for clear in ("eyJ.the.token", {"value": "eyJ.the.token"}, {**reference, "value": "eyJ.the.token"}):
        with pytest.raises(ValidationError):
            validate({"access_token": clear}, schema, raise_on_error=True, preprocess=True)


def _job_op(**kwargs) -> HpcJobStepOperator:
    with DAG("render_forms"):
        return HpcJobStepOperator(task_id="j", **kwargs)


def test_job_from_native_rendering_and_from_string_mode_reprs():
    native = _job_op(job_requirements=SEED_JOB["requirements"], data_inputs=SEED_JOB["data_inputs"],
                     data_outputs=SEED_JOB["data_outputs"]).job()
    per_element = _job_op(
        job_requirements=repr(SEED_JOB["requirements"]),
        data_inputs=[{"source": repr(i["source"]), "target_path": i["target_path"]} for i in SEED_JOB["data_inputs"]],
        data_outputs=[{"target": repr(o["target"]), "source_path": o["source_path"]} for o in SEED_JOB["data_outputs"]],
    ).job()
    assert native == per_element
    assert native.data_inputs[0].target_path == "/"


def test_an_invalid_job_fails_without_retry_naming_the_field():
    bad = {**SEED_JOB["requirements"], "tasks": [{**SEED_JOB["requirements"]["tasks"][0], "walltime_limit": -1}]}
    with pytest.raises(AirflowFailException, match=r"requirements\.tasks\[0\]\.walltime_limit"):
        _job_op(job_requirements=bad, data_inputs=[], data_outputs=[]).job()


def test_an_empty_access_token_fails_naming_the_param():
    with DAG("empty_token"):
        op = LexisAAIOperator(task_id="t", access_token="")
    with pytest.raises(AirflowFailException, match="access_token is empty"):
        asyncio.run(op.execute({}))


def test_the_rendered_token_stays_out_of_the_repr():
    with DAG("repr_token"):
        op = LexisAAIOperator(task_id="t", access_token="eyJhbGciOiJIUzI1NiJ9.secret.sig")
    assert "eyJ" not in repr(op)


class _Fails(BaseOperator):
    def execute(self, context):
        raise RuntimeError("the job failed")


@pytest.mark.usefixtures("prefect_harness")
def test_finish_fails_the_run_when_an_earlier_task_failed():
    with DAG("finish_rule") as dag:
        job = _Fails(task_id="job")
        stop = EmptyOperator(task_id="stop", trigger_rule="all_done")
        job >> stop >> FinishOperator(task_id="finish")
    result = dag.test()
    assert result.tasks == {"job": "failed", "stop": "success", "finish": "failed"}
    assert result.state == "failed"
