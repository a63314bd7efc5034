import copy

import pendulum
from airflow import DAG
from airflow.decorators import task, task_group
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

# A parameter sweep: one HPC job per value of `values`, written with Airflow's own dynamic task
# mapping. A task turns the job template and the values into one set of step arguments per value;
# a task group holding the LEXIS job step is mapped over them with `expand_kwargs`, so each value
# runs as its own HPC job (task `sweep.point.hpc_job[i]`) with its own output dataset.

with DAG(
    dag_id="lexis_hpc_sweep",
    description="Parameter sweep: one HPC job per value",
    catchup=False,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    schedule_interval=None,
    tags=["myproject"],
    access_control={'myproject': {'can_read', 'can_edit'}},
    render_template_as_native_obj=True,
    params={
        "access_token": Param("", type="string"),
        "values": Param(["0.1", "0.2", "0.4"], type="array", items={"type": "string"}, minItems=1,
                        description="One HPC job per value, passed as the template's input_param"),
        "job": Param({
            "requirements": {
                "job_name": "Sweep",
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
                        "input_param": "set for each value"
                    }
                }]
            },
            "data_inputs": [{
                "source": {
                    "location": "your-location",
                    "resource": "your-resource",
                    "info": {
                        "dataset_id": "your-dataset-uuid",
                        "path": "/"
                    }
                },
                "target_path": "/"
            }],
            "data_outputs": [{
                "target": {
                    "location": "your-location",
                    "resource": "your-resource",
                    "info": {
                        "access": "project",
                        "path": "/",
                        "title": "Sweep results",
                        "dataset_type": "dataset"
                    }
                },
                "source_path": "/"
            }]
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

    # --- One job per value ---
    @task
    def sweep_points(params=None):
        """The step's arguments for each value: the template, named and titled after the value."""
        points = []
        for value in params["values"]:
            job = copy.deepcopy(params["job"])
            job["requirements"]["job_name"] += f" {value}"
            for hpc_task in job["requirements"]["tasks"]:
                hpc_task["template_parameter_values"]["input_param"] = value
            for output in job["data_outputs"]:
                output["target"]["info"]["title"] += f" ({value})"
            points.append({
                "job_requirements": job["requirements"],
                "data_inputs": job["data_inputs"],
                "data_outputs": job["data_outputs"]
            })
        return points

    @task_group(group_id="sweep")
    def sweep(job_requirements, data_inputs, data_outputs):
        build_hpc_job_step(
            dag=dag,
            group_id="point",
            job_requirements=job_requirements,
            data_inputs=data_inputs,
            data_outputs=data_outputs
        )

    points = sweep.expand_kwargs(sweep_points())

    # --- Workflow Completion ---
    finish = FinishOperator(
        task_id="finish"
    )

    # --- Task Dependencies ---
    ref_token >> ref_token_keeper
    ref_token >> points >> ref_token_stop >> finish

if __name__ == "__main__":
    dag.test()
