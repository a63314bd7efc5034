"""Label / EdgeModifier: the edges they make, shown by a failing task's downstream. Across task
groups, a label links the groups (Airflow's rule), not just the two tasks."""

import pendulum

from airflow import DAG
from airflow.models.baseoperator import chain
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.utils.edgemodifier import Label
from airflow.utils.task_group import TaskGroup


def fail():
    raise RuntimeError("fails on purpose")


def failing(task_id):
    return PythonOperator(task_id=task_id, python_callable=fail)


with DAG(
    dag_id="edge_labels",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    # a >> Label >> b and b << Label << a
    failing("a") >> Label("on failure") >> EmptyOperator(task_id="b")
    EmptyOperator(task_id="c") << Label("backwards") << failing("d")
    # a list on either side
    [failing("e1"), EmptyOperator(task_id="e2")] >> Label("fan in") >> EmptyOperator(task_id="f")
    failing("g") >> Label("fan out") >> [EmptyOperator(task_id="h1"), EmptyOperator(task_id="h2")]
    # chain() through a label
    chain(failing("i"), Label("chained"), EmptyOperator(task_id="j"))

    # from the root group into a task inside a group: linked to the group's roots (k >> grp.x)
    with TaskGroup("grp") as grp:
        EmptyOperator(task_id="x") >> EmptyOperator(task_id="y")
    failing("k") >> Label("into a group") >> dag.get_task("grp.y")
    # within one group: the two tasks themselves
    with TaskGroup("same") as same:
        failing("p") >> Label("inside") >> EmptyOperator(task_id="q")
        EmptyOperator(task_id="r")

if __name__ == "__main__":
    dag.test()
