"""Datasets, timetables and schedules of Airflow DAGs, and what they become on Prefect.

- :mod:`.datasets`: ``Dataset``, ``DatasetAlias``, ``&`` / ``|`` (served as ``airflow.datasets``;
  Airflow 3's ``Asset`` is the same object under its new name);
- :mod:`.events`: outlet/inlet events, ``Metadata``, the Prefect event a successful task emits
  per outlet dataset;
- :mod:`.timetables`, :mod:`.cron`: Airflow's timetables (``airflow.timetables.*``);
- :mod:`.schedule`: the ``schedule`` / ``schedule_interval`` / ``timetable`` arguments of a DAG;
- :mod:`.runs`, :mod:`.context`: a run's type, run id, logical date and data interval, and the
  context keys that follow from them;
- :mod:`.triggers`: a DAG's deployment schedule and dataset triggers.
"""
