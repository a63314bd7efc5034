import pendulum
from airflow import DAG
from airflow.models.param import Param
from airflow.utils.trigger_rule import TriggerRule
from lexis.operators.aai import (
    LexisAAIOperator,
    LexisAAITokenKeeperSensor,
    LexisAAIStopKeeperOperator
)
from lexis.operators.hpc import build_hpc_job_step
from lexis.operators.scheduler.hpc_job import FinishOperator
from lexis.datatypes.hpc import SingleHPCJob

# Two HPC jobs in sequence, written as LEXIS's "Custom Static DAG" page teaches:
# a preprocessing job on Karolina, then a simulation under the `failover` policy
# (Barbora first, Karolina when Barbora is unavailable).

DATA_INPUTS = [{
    "source": {
        "location": "your-location",
        "resource": "your-resource",
        "info": {
            "dataset_id": "your-dataset-uuid",
            "path": "/"
        }
    },
    "target_path": "/"
}]


def data_outputs(title):
    return [{
        "target": {
            "location": "your-location",
            "resource": "your-resource",
            "info": {
                "access": "project",
                "path": "/",
                "title": title,
                "dataset_type": "dataset"
            }
        },
        "source_path": "/"
    }]


with DAG(
    dag_id="lexis_hpc_two_jobs",
    description="Two HPC jobs in sequence, the second with failover",
    catchup=False,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    schedule_interval=None,
    tags=["myproject"],
    access_control={'myproject': {'can_read', 'can_edit'}},
    render_template_as_native_obj=True,
    params={
        "access_token": Param("", type="string"),
        "job1": Param({
            "requirements": {
                "job_name": "Preprocessing",
                "project_shortname": "myproject",
                "policy": "preferred",
                "locations": [{
                    "location_name": "Karolina",
                    "location_resource": "your-resource-name"
                }],
                "tasks": [{
                    "command_template_name": "TestTemplate",
                    "node_type_name": "qcpu_exp",
                    "walltime_limit": 3600,
                    "max_cores": 128,
                    "template_parameter_values": {
                        "input_param": "prepare"
                    }
                }]
            },
            "data_inputs": DATA_INPUTS,
            "data_outputs": data_outputs("Preprocessed data")
        }, schema=SingleHPCJob),
        "job2": Param({
            "requirements": {
                "job_name": "Simulation",
                "project_shortname": "myproject",
                "policy": "failover",
                "locations": [{
                    "location_name": "Barbora",
                    "location_resource": "your-resource-name"
                }, {
                    "location_name": "Karolina",
                    "location_resource": "your-resource-name"
                }],
                "tasks": [{
                    "command_template_name": "TestTemplate",
                    "node_type_name": "qcpu_exp",
                    "walltime_limit": 7200,
                    "max_cores": 128,
                    "template_parameter_values": {
                        "input_param": "simulate"
                    }
                }]
            },
            "data_inputs": DATA_INPUTS,
            "data_outputs": data_outputs("Simulation results")
        }, schema=SingleHPCJob)
    }
) as dag:

    # --- Token Management ---
    ref_token = LexisAAIOperator(
        task_id="refresh_token_task",
        access_token="{{ params.access_token }}",
        offline_access=True
    )

    ref_token_keeper = LexisAAITokenKeeperSensor(
        task_id="ref_token_keeper",
        offline_access=True
    )

    ref_token_stop = LexisAAIStopKeeperOperator(
        trigger_rule=TriggerRule.ALL_DONE
    )

    # --- Job 1: inputs and outputs templated element by element ---
    job1_inputs = []
    for k, data_input in enumerate(dag.params.get_param("job1").value["data_inputs"]):
        job1_inputs.append({
            "source": "{{ params.job1['data_inputs'][" + str(k) + "]['source'] }}",
            "target_path": "{{ params.job1['data_inputs'][" + str(k) + "]['target_path'] }}"
        })

    job1_outputs = []
    for k, data_output in enumerate(dag.params.get_param("job1").value["data_outputs"]):
        job1_outputs.append({
            "target": "{{ params.job1['data_outputs'][" + str(k) + "]['target'] }}",
            "source_path": "{{ params.job1['data_outputs'][" + str(k) + "]['source_path'] }}"
        })

    job1 = build_hpc_job_step(
        dag=dag,
        group_id="preprocess",
        job_requirements="{{ params.job1['requirements'] }}",
        data_inputs=job1_inputs,
        data_outputs=job1_outputs
    )

    # --- Job 2: one template per argument ---
    job2 = build_hpc_job_step(
        dag=dag,
        group_id="simulate",
        job_requirements="{{ params.job2['requirements'] }}",
        data_inputs="{{ params.job2['data_inputs'] }}",
        data_outputs="{{ params.job2['data_outputs'] }}"
    )

    # --- Workflow Completion ---
    finish = FinishOperator(
        task_id="finish"
    )

    # --- Task Dependencies ---
    ref_token >> ref_token_keeper
    ref_token >> job1 >> job2 >> ref_token_stop >> finish

if __name__ == "__main__":
    dag.test()
