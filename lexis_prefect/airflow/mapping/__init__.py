"""Dynamic task mapping, as in Airflow 2.10: ``.partial()``, ``.expand()``, ``.expand_kwargs()``.

- :mod:`.expand_input`: what a mapped task expands over (literals, XComArgs, cross products).
- :mod:`.xcom_args`: ``XComArg.map``/``zip``/``concat`` and the lazy sequence of a mapped task's XComs.
- :mod:`.operator`: the mapped task at parse time (classic operators and ``@task``).
- :mod:`.task_group`: mapped ``@task_group`` functions.
- :mod:`.run`: expansion at run time, one task instance and Prefect task run per map index.
"""
