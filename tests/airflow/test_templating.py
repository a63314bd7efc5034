"""Jinja templating as Airflow 2.10.5 does it: environment, native rendering, recursion, context.

The first part renders with ``operator.render_template`` (no run needed); the rest runs DAGs with
``dag.test()`` on Prefect and records what ``execute`` received. Every expectation was checked
against a real Airflow 2.10.5 (a separate virtualenv with ``apache-airflow==2.10.5``) rendering the same templates
(airflow-on-prefect.md §1.5).
"""

from __future__ import annotations

import collections
import importlib.util
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import pytest

from lexis_prefect.airflow.baseoperator import BaseOperator
from lexis_prefect.airflow.dag import DAG
from lexis_prefect.airflow.params import Param

needs_prefect = pytest.mark.usefixtures("prefect_harness")


class Op(BaseOperator):
    """Renders ``value`` (and ``other``), records what ``execute`` got in ``seen[task_id]``."""

    template_fields = ("value", "other")

    def __init__(self, *, value: Any = None, other: Any = None, seen: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value
        self.other = other
        self.seen = seen if seen is not None else {}

    def execute(self, context: Any) -> Any:
        self.seen[self.task_id] = {"value": self.value, "other": self.other, "self": self, "context": context}
        return None


class Holder:
    """A non-collection object with its own template_fields, nested in an operator's field."""

    template_fields = ("cmd", "args")

    def __init__(self, cmd: Any, args: Any = None) -> None:
        self.cmd = cmd
        self.args = args


class Falsy(Holder):
    def __bool__(self) -> bool:
        return False


NT = collections.namedtuple("NT", "a b")

PARAMS = {
    "job1": {"requirements": {"cpus": 4}},
    "tok": "12345",
    "jwt": "eyJhbGciOi",
    "a": 1,
    "b": 2,
    "flag": "True",
    "lst": "[1, 2]",
}


def renderer(native: bool, **dag_kwargs: Any) -> Op:
    with DAG(f"render_{native}", schedule=None, render_template_as_native_obj=native, **dag_kwargs):
        return Op(task_id="o")


# --- native and string rendering: the table of airflow-on-prefect.md §1.5 -----------------------

# (template, native result, string-mode result); every row checked on Airflow 2.10.5
TABLE = [
    ("{{ params.job1 }}", {"requirements": {"cpus": 4}}, "{'requirements': {'cpus': 4}}"),
    ("{{ params.job1['requirements'] }}", {"cpus": 4}, "{'cpus': 4}"),
    ("{{ params.job1.requirements.cpus }}", 4, "4"),
    ("{{ params.tok }}", 12345, "12345"),
    ("{{ params.jwt }}", "eyJhbGciOi", "eyJhbGciOi"),
    ("{{ params.a }}{{ params.b }}", 12, "12"),
    ("x-{{ params.a }}", "x-1", "x-1"),
    ("{{ params.flag }}", True, "True"),
    ("{{ params.lst }}", [1, 2], "[1, 2]"),
    ("{{ params.a }}", 1, "1"),
    (" {{ params.a }} ", " 1 ", " 1 "),
    ("no template", "no template", "no template"),
]


@pytest.mark.parametrize(("template", "native", "string"), TABLE, ids=[row[0] for row in TABLE])
def test_native_and_string_rendering(template: str, native: Any, string: str) -> None:
    got_native = renderer(True).render_template(template, {"params": PARAMS})
    got_string = renderer(False).render_template(template, {"params": PARAMS})
    assert got_native == native and type(got_native) is type(native)
    assert got_string == string and type(got_string) is str


def test_missing_key_in_a_single_expression_is_a_strict_undefined_object_in_native_mode() -> None:
    got = renderer(True).render_template("{{ params.missing }}", {"params": PARAMS})
    assert isinstance(got, jinja2.StrictUndefined)
    with pytest.raises(jinja2.UndefinedError, match="'dict object' has no attribute 'missing'"):
        str(got)  # it raises only when used


@pytest.mark.parametrize(
    ("native", "template"),
    [
        (False, "{{ params.missing }}"),
        (True, "x{{ params.missing }}"),
        (False, "x{{ params.missing }}"),
        (True, "{{ 'a' }}{{ params.missing }}"),
    ],
)
def test_missing_key_raises_otherwise(native: bool, template: str) -> None:
    with pytest.raises(jinja2.UndefinedError, match="'dict object' has no attribute 'missing'"):
        renderer(native).render_template(template, {"params": PARAMS})


def test_template_undefined_of_the_dag_is_used() -> None:
    op = renderer(False, template_undefined=jinja2.Undefined)
    assert op.render_template("a{{ params.missing }}b", {"params": PARAMS}) == "ab"


# --- the environment ---------------------------------------------------------------------------

CTX_DATE = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ d | ds }}", "2024-01-02"),
        ("{{ d | ds_nodash }}", "20240102"),
        ("{{ d | ts }}", "2024-01-02T03:04:05+00:00"),
        ("{{ d | ts_nodash }}", "20240102T030405"),
        ("{{ d | ts_nodash_with_tz }}", "20240102T030405+0000"),
    ],
)
@pytest.mark.parametrize("native", [False, True])
def test_ds_and_ts_filters(template: str, expected: str, native: bool) -> None:
    got = renderer(native).render_template(template, {"d": CTX_DATE})
    if native and expected.isdigit():
        # native mode literal_evals the result: `{{ ds_nodash }}` arrives as the int 20240102 (Airflow too)
        assert got == int(expected) and type(got) is int
    else:
        assert got == expected and type(got) is str


def test_user_defined_macros_and_filters() -> None:
    op = renderer(
        False,
        user_defined_macros={"twice": lambda v: v * 2, "greeting": "hi"},
        user_defined_filters={"shout": lambda s: str(s).upper() + "!"},
    )
    assert op.render_template("{{ twice(params.a) }} {{ greeting | shout }}", {"params": PARAMS}) == "2 HI!"


def test_context_wins_over_a_macro_of_the_same_name() -> None:
    op = renderer(False, user_defined_macros={"ds": "macro"})
    assert op.render_template("{{ ds }}", {"ds": "context"}) == "context"
    assert op.render_template("{{ ds }}", {}) == "macro"


def test_do_extension_and_jinja_environment_kwargs() -> None:
    op = renderer(False, jinja_environment_kwargs={"trim_blocks": True})
    assert op.render_template("{% set l = [] %}{% do l.append(params.a) %}{{ l }}", {"params": PARAMS}) == "[1]"
    assert op.render_template("{% if true %}\nx{% endif %}", {}) == "x"  # trim_blocks took effect


def test_string_mode_is_sandboxed() -> None:
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError, match="access to attribute '__class__' of 'str' object is unsafe"):
        renderer(False).render_template("{{ ''.__class__ }}", {})


# --- recursion ---------------------------------------------------------------------------------


def test_recursion_into_collections_and_not_into_dict_keys() -> None:
    op = renderer(False)
    ctx = {"params": PARAMS}
    value = [
        "{{ params.a }}",
        ("{{ params.a }}", 2),
        NT("{{ params.a }}", 3),
        {"{{ params.a }}": "{{ params.b }}", "nested": ["{{ params.b }}"]},
        {"{{ params.a }}", "x"},
        5,
        None,
    ]
    got = op.render_template(value, ctx)
    assert got == ["1", ("1", 2), NT("1", 3), {"{{ params.a }}": "2", "nested": ["2"]}, {"1", "x"}, 5, None]
    assert type(got[1]) is tuple and type(got[2]) is NT and isinstance(got[4], set)
    assert value[0] == "{{ params.a }}"  # collections are rebuilt, the given one is untouched


def test_nested_objects_are_rendered_through_their_template_fields() -> None:
    op = renderer(True)
    inner = Holder("{{ params.a }}", args=["{{ params.b }}", Holder("{{ params.tok }}")])
    got = op.render_template({"h": inner}, {"params": PARAMS})
    assert got["h"] is inner  # rendered in place, as Airflow does
    assert inner.cmd == 1 and inner.args[0] == 2 and inner.args[1].cmd == 12345


def test_circular_nested_objects_do_not_recurse_forever() -> None:
    a = Holder("{{ params.a }}")
    b = Holder("{{ params.b }}", args=a)
    a.args = b
    renderer(False).render_template(a, {"params": PARAMS})
    assert (a.cmd, b.cmd) == ("1", "2") and a.args is b and b.args is a


def test_falsy_values_are_not_rendered() -> None:
    with DAG("falsy", schedule=None):
        empty_list: list = []
        op = Op(task_id="o", value=empty_list, other=Falsy("{{ params.a }}"))
    copy = op.prepare_for_execution()
    copy.render_template_fields({"params": PARAMS})
    assert copy.value is empty_list
    assert copy.other.cmd == "{{ params.a }}"  # Falsy: skipped, its fields too


def test_callable_field_is_called_with_context_and_env() -> None:
    def field(context: dict, jinja_env: jinja2.Environment) -> Any:
        return context["params"]["a"] * 10, isinstance(jinja_env, jinja2.Environment)

    with DAG("callable_field", schedule=None):
        op = Op(task_id="o", value=field)
    copy = op.prepare_for_execution()
    copy.render_template_fields({"params": PARAMS})
    assert copy.value == (10, True) and op.value is field


def test_missing_template_field_attribute_raises() -> None:
    class Broken(BaseOperator):
        template_fields = ("nope",)

    with DAG("broken_field", schedule=None):
        op = Broken(task_id="o")
    with pytest.raises(AttributeError, match="'nope' is configured as a template field but Broken does not have this attribute"):
        op.render_template_fields({})


def test_template_fields_as_a_string_is_one_field() -> None:
    class One(BaseOperator):
        template_fields = "cmd"

        def __init__(self, *, cmd: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.cmd = cmd

    with DAG("one_field", schedule=None):
        op = One(task_id="o", cmd="{{ params.a }}")
    assert tuple(op.template_fields) == ("cmd",)  # not ("c", "m", "d")
    op.render_template_fields({"params": PARAMS})
    assert op.cmd == "1"


# --- template files ----------------------------------------------------------------------------


def _load_dag_file(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_prefect
def test_template_ext_files_from_the_dag_folder_and_template_searchpath(tmp_path: Path) -> None:
    dags, extra = tmp_path / "dags", tmp_path / "extra"
    (dags / "sql").mkdir(parents=True)
    extra.mkdir()
    (dags / "run.sh").write_text("echo {{ params.a }} {{ ds }}")
    (dags / "sql" / "q.sql").write_text("select {{ params.b }}")
    (extra / "other.sh").write_text("other {{ params.a | string + '!' }}")
    (dags / "dag_with_files.py").write_text(
        textwrap.dedent(
            """
            from lexis_prefect.airflow.baseoperator import BaseOperator
            from lexis_prefect.airflow.dag import DAG

            SEEN = {}

            class FileOp(BaseOperator):
                template_fields = ("cmd", "not_a_file")
                template_ext = (".sh", ".sql")

                def __init__(self, *, cmd, not_a_file=None, **kwargs):
                    super().__init__(**kwargs)
                    self.cmd = cmd
                    self.not_a_file = not_a_file

                def execute(self, context):
                    SEEN[self.task_id] = (self.cmd, self.not_a_file, context["ds"])

            with DAG("dag_with_files", schedule=None, params={"a": 1, "b": 2}, template_searchpath=[%r]) as dag:
                FileOp(task_id="from_dag_folder", cmd="run.sh", not_a_file="{{ params.a }}.txt")
                FileOp(task_id="from_subfolder", cmd="sql/q.sql")
                FileOp(task_id="from_searchpath", cmd="other.sh")
                FileOp(task_id="list_of_files", cmd=["run.sh", "literal {{ params.b }}"])
            """
            % str(extra)
        )
    )
    module = _load_dag_file(dags / "dag_with_files.py")
    result = module.dag.test()
    assert result.state == "success", result.tasks
    seen = module.SEEN
    ds = seen["from_dag_folder"][2]
    assert seen["from_dag_folder"][:2] == (f"echo 1 {ds}", "1.txt")
    assert seen["from_subfolder"][0] == "select 2"
    assert seen["from_searchpath"][0] == "other 1!"
    assert seen["list_of_files"][0] == [f"echo 1 {ds}", "literal 2"]
    assert module.dag.get_task("from_dag_folder").cmd == "run.sh"  # the DAG's operator is untouched


@needs_prefect
def test_missing_template_file_fails_the_task(tmp_path: Path) -> None:
    (tmp_path / "dag_missing_file.py").write_text(
        textwrap.dedent(
            """
            from lexis_prefect.airflow.baseoperator import BaseOperator
            from lexis_prefect.airflow.dag import DAG

            class FileOp(BaseOperator):
                template_fields = ("cmd",)
                template_ext = (".sh",)

                def __init__(self, *, cmd, **kwargs):
                    super().__init__(**kwargs)
                    self.cmd = cmd

                def execute(self, context):
                    return self.cmd

            with DAG("dag_missing_file", schedule=None) as dag:
                FileOp(task_id="t", cmd="nope.sh")
            """
        )
    )
    result = _load_dag_file(tmp_path / "dag_missing_file.py").dag.test()
    assert result.state == "failed" and result.tasks == {"t": "failed"}


# --- in a run ----------------------------------------------------------------------------------


@needs_prefect
def test_fields_are_rendered_on_a_copy_and_the_operator_is_untouched() -> None:
    seen: dict = {}
    with DAG("render_copy", schedule=None, params={"a": 1}) as dag:
        op = Op(task_id="t", value="{{ params.a }}", other=["{{ params.a }}", {"k": "{{ params.a }}"}], seen=seen)
    other_before = op.other
    result = dag.test()
    assert result.tasks == {"t": "success"}
    got = seen["t"]
    assert got["value"] == "1" and got["other"] == ["1", {"k": "1"}]
    assert got["self"] is not op  # execute ran on the copy
    assert op.value == "{{ params.a }}"
    assert op.other is other_before and op.other == ["{{ params.a }}", {"k": "{{ params.a }}"}]
    # a second run renders the templates again
    seen.clear()
    assert dag.test(run_conf={"a": 5}).tasks == {"t": "success"}
    assert seen["t"]["value"] == "5"


@needs_prefect
def test_nested_object_is_rendered_in_place_as_in_airflow() -> None:
    """Airflow 2.10.5 quirk, reproduced: the copy is shallow, so a nested object with
    template_fields is rendered in the DAG's own object (checked with dag.test on Airflow: after
    the run the Holder's ``cmd`` is ``1``)."""
    seen: dict = {}
    holder = Holder("{{ params.a }}")
    with DAG("render_nested_in_place", schedule=None, params={"a": 1}) as dag:
        op = Op(task_id="t", value=[holder, "{{ params.a }}"], seen=seen)
    assert dag.test().tasks == {"t": "success"}
    assert seen["t"]["value"][0] is holder and holder.cmd == "1"
    assert op.value[1] == "{{ params.a }}"


@needs_prefect
def test_native_rendering_in_a_run() -> None:
    """The LEXIS case: a token given in the conf as "12345" reaches execute as an int."""
    seen: dict = {}
    with DAG(
        "native_run",
        schedule=None,
        render_template_as_native_obj=True,
        params={
            "access_token": Param("x", type="string"),
            "flag": "False",
            "job1": Param({"requirements": {"cpus": 4}}, type="object"),
        },
    ) as dag:
        Op(
            task_id="t",
            value={"token": "{{ params.access_token }}", "flag": "{{ params.flag }}", "job": "{{ params.job1 }}"},
            other="{{ params.job1['requirements'] }}",
            seen=seen,
        )
    result = dag.test(run_conf={"access_token": "12345", "flag": "True"})
    assert result.tasks == {"t": "success"}
    value = seen["t"]["value"]
    assert value["token"] == 12345 and type(value["token"]) is int
    assert value["flag"] is True
    assert value["job"] == {"requirements": {"cpus": 4}}
    assert seen["t"]["other"] == {"cpus": 4}


@needs_prefect
def test_string_rendering_in_a_run() -> None:
    seen: dict = {}
    with DAG("string_run", schedule=None, params={"access_token": "x", "job1": {"requirements": {"cpus": 4}}}) as dag:
        Op(task_id="t", value=["{{ params.access_token }}", "{{ params.job1 }}"], seen=seen)
    assert dag.test(run_conf={"access_token": "12345"}).tasks == {"t": "success"}
    assert seen["t"]["value"] == ["12345", "{'requirements': {'cpus': 4}}"]


@needs_prefect
def test_undefined_in_a_template_fails_the_task_and_skips_execute() -> None:
    seen: dict = {}
    with DAG("undefined_run", schedule=None, params={"a": 1}) as dag:
        Op(task_id="t", value="x-{{ params.missing }}", seen=seen)
    result = dag.test()
    assert result.state == "failed" and result.tasks == {"t": "failed"}
    assert seen == {}


@needs_prefect
def test_context_keys_in_templates_and_in_execute() -> None:
    from prefect.variables import Variable

    Variable.set("lexis_shim_var", "from-prefect", overwrite=True)
    Variable.set("lexis_shim_json", {"a": [1, 2]}, overwrite=True)
    seen: dict = {}
    with DAG("context_keys", schedule=None, params={"p": Param(1, type="integer")}) as dag:
        Op(
            task_id="t",
            value={
                "params": "{{ params.p }}",
                "ds": "{{ ds }}",
                "ds_nodash": "{{ ds_nodash }}",
                "ts": "{{ ts }}",
                "run_id": "{{ run_id }}",
                "ti": "{{ ti.task_id }}/{{ task_instance.task_id }}/{{ task.task_id }}",
                "dag": "{{ dag.dag_id }}/{{ dag_run.dag_id }}",
                "conf": "{{ dag_run.conf['extra'] }}",
                "ds_add": "{{ macros.ds_add(ds, 1) }}",
                "tomorrow": "{{ tomorrow_ds }}",
                "yesterday": "{{ yesterday_ds }}",
                "filter": "{{ logical_date | ds }}",
                "var": "{{ var.value.lexis_shim_var }}",
                "var_json": "{{ var.json.lexis_shim_json.a[1] }}",
                "key_str": "{{ task_instance_key_str }}",
            },
            seen=seen,
        )
    result = dag.test(run_conf={"extra": "e", "p": 3})
    assert result.tasks == {"t": "success"}
    got, context = seen["t"]["value"], seen["t"]["context"]
    ds = context["ds"]
    logical_date = context["logical_date"]
    assert ds == logical_date.strftime("%Y-%m-%d") and context["ts"] == logical_date.isoformat()
    assert got["params"] == "3"
    assert got["ds"] == ds and got["ds_nodash"] == ds.replace("-", "")
    assert got["ts"] == context["ts"]
    assert got["run_id"] == context["run_id"] == result.run_id and got["run_id"].startswith("manual__")
    assert got["ti"] == "t/t/t" and got["dag"] == "context_keys/context_keys"
    assert got["conf"] == "e"
    assert got["ds_add"] == got["tomorrow"] == context["tomorrow_ds"]
    assert got["yesterday"] == context["macros"].ds_add(ds, -1)
    assert got["filter"] == ds
    assert got["var"] == "from-prefect" and got["var_json"] == "2"
    assert got["key_str"] == f"context_keys__t__{ds.replace('-', '')}"
    assert context["params"] == {"p": 3, "extra": "e"} and type(context["params"]) is dict
    assert context["dag_run"].conf == {"extra": "e", "p": 3}
    assert context["ti"] is context["task_instance"] and context["ti"].task_id == "t"
    assert context["ti"].try_number == 1 and context["dag"] is dag


@needs_prefect
def test_run_id_is_manual_and_the_logical_date() -> None:
    seen: dict = {}
    with DAG("run_id_ts", schedule=None) as dag:
        Op(task_id="t", value="{{ run_id }}|{{ ts }}", seen=seen)
    assert dag.test().tasks == {"t": "success"}
    run_id, ts = seen["t"]["value"].split("|")
    assert run_id == f"manual__{ts}"


@needs_prefect
def test_context_has_every_key_airflow_gives_execute() -> None:
    # the keys a task's execute() got on Airflow 2.10.5 (manual run via dag.test)
    airflow_keys = {
        "conf", "conn", "dag", "dag_run", "data_interval_end", "data_interval_start", "ds", "ds_nodash",
        "execution_date", "expanded_ti_count", "inlet_events", "inlets", "logical_date", "macros",
        "map_index_template", "next_ds", "next_ds_nodash", "next_execution_date", "outlet_events", "outlets",
        "params", "prev_data_interval_end_success", "prev_data_interval_start_success", "prev_ds",
        "prev_ds_nodash", "prev_end_date_success", "prev_execution_date", "prev_execution_date_success",
        "prev_start_date_success", "run_id", "task", "task_instance", "task_instance_key_str", "test_mode",
        "ti", "tomorrow_ds", "tomorrow_ds_nodash", "triggering_dataset_events", "ts", "ts_nodash",
        "ts_nodash_with_tz", "var", "yesterday_ds", "yesterday_ds_nodash",
    }  # fmt: skip
    seen: dict = {}
    with DAG("all_context_keys", schedule=None) as dag:
        Op(task_id="t", seen=seen)
    assert dag.test().tasks == {"t": "success"}
    assert airflow_keys - set(seen["t"]["context"]) == set()
