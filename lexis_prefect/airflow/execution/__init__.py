"""Running a DAG as one Prefect flow run: the parts that act at run time, apart from the DAG model.

- :mod:`.runner`: the DAG's flow (``dag.test()``, deployments), the scheduler that starts each
  task instance as a Prefect task run, and the leaf rule that decides the run's state;
- :mod:`.turns`: ``dag.test()``'s loop turns, which make eager trigger rules decide as Airflow's do;
- :mod:`.taskinstance`: ``TaskInstance``/``DagRun`` and the template context a task sees;
- :mod:`.xcom`: the run's XCom store and Airflow's serialisation of values;
- :mod:`.templating`: rendering ``template_fields`` with Airflow's Jinja environment and macros.

The model (``lexis_prefect.airflow.dag``, ``.baseoperator``...) imports these lazily, at run time.
"""
