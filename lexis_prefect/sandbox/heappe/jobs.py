"""Sandbox HEAppE jobs: their lifecycle, each task a real local process.

Each submitted task runs as a local shell process in its own directory
(`<data>/jobs/<job id>/<task id>/`), in its own process group, through a
wrapper that writes the exit status to a control file. The monitor reads those
files, so a sandbox restarted with `--state-dir` picks its running jobs up again.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from lexis_prefect.models.heappe import FileType, JobSpecification, JobState, TaskState
from lexis_prefect.sandbox.config import SandboxConfig, SandboxLocation
from lexis_prefect.sandbox.heappe import business_rules as business
from lexis_prefect.sandbox.heappe import catalogue
from lexis_prefect.sandbox.heappe.rules import HEAppEProblem
from lexis_prefect.sandbox.heappe.versions import profile as heappe_profile

__all__ = ["HEAppEJobs", "task_file_name"]

logger = logging.getLogger("lexis_prefect.sandbox")
_ACTIVE = (JobState.Submitted, JobState.Queued, JobState.Running)


def _now() -> float:
    return time.time()


class HEAppEJobs:
    """The jobs of every sandbox HEAppE instance, from CreateJob to their end, and their local processes."""

    def __init__(self, config: SandboxConfig, data_dir: Path) -> None:
        self.config = config
        self.profile = heappe_profile(config.heappe_version)  # what the emulated HEAppE tag does (versions.py)
        self.jobs_dir = data_dir / "jobs"
        self.control_dir = data_dir / "control"
        self.jobs: dict[int, dict[str, Any]] = {}
        self.next_id = 1
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self.dirty = False

    # -- persistence ------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"jobs": {str(k): v for k, v in self.jobs.items()}, "next_id": self.next_id}

    def load(self, data: dict[str, Any]) -> None:
        self.jobs = {int(k): v for k, v in data["jobs"].items()}
        self.next_id = data["next_id"]

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    # -- jobs -------------------------------------------------------------------------------

    def job(self, location: SandboxLocation, user: str, job_id: int) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None or job["location"] != location.name:
            raise business.unknown_job(job_id)
        if job["user"] != user:
            raise business.foreign_job(self.profile, user, job_id)
        return job

    def create(self, location: SandboxLocation, user: str, spec: JobSpecification) -> dict[str, Any]:
        """A job from a spec `business.business_create_job` has accepted."""
        job_id = self._new_id()
        tasks = [self._task(location, job_id, task) for task in spec.tasks]
        job = {
            "id": job_id,
            "name": spec.name,
            "user": user,
            "location": location.name,
            "project_id": spec.project_id,
            "state": int(JobState.Configuring),
            "created": _now(),
            "submitted": None,
            "started": None,
            "ended": None,
            "tasks": tasks,
        }
        for task in tasks:
            self.task_dir(job_id, task["id"]).mkdir(parents=True, exist_ok=True)
        self.jobs[job_id] = job
        self.dirty = True
        return job

    def _task(self, location: SandboxLocation, job_id: int, task: Any) -> dict[str, Any]:
        # The node type, template, parameters and walltime were checked by business.business_create_job;
        # values of identifiers the template does not declare are not refused by HEAppE, only unused.
        _, template = catalogue.templates(self.config, location)[task.command_template_id]
        values = {
            v.command_parameter_identifier: v.parameter_value
            for v in task.template_parameter_values
            if v.command_parameter_identifier in template.parameters
        }
        files = {
            FileType.StandardOutputFile: task.standard_output_file,
            FileType.StandardErrorFile: task.standard_error_file,
            FileType.ProgressFile: task.progress_file,
            FileType.LogFile: task.log_file,
        }
        for file_type, name in files.items():
            _check_task_file(file_type, name)
        return {
            "id": self._new_id(),
            "name": task.name,
            "state": int(TaskState.Configuring),
            "template": template.name,
            "values": values,
            "walltime": task.walltime_limit,
            "node_type_id": task.cluster_node_type_id,
            "files": {int(file_type): name for file_type, name in files.items()},
            "pid": None,
            "started": None,
            "ended": None,
            "error": None,
        }

    def submit(self, job: dict[str, Any]) -> None:
        business.check_submit(job["state"])
        job["state"] = int(JobState.Submitted)
        job["submitted"] = _now()
        for task in job["tasks"]:
            task["state"] = int(TaskState.Submitted)
        self.dirty = True

    def cancel(self, job: dict[str, Any]) -> None:
        business.check_cancel(self.profile, job["id"], job["state"])
        if job["state"] in (JobState.Configuring, JobState.WaitingForServiceAccount):
            for task in job["tasks"]:
                task["state"] = int(TaskState.Canceled)
        self._stop(job, JobState.Canceled, "Job cancelled manually by the client.")

    def delete(self, job: dict[str, Any]) -> None:
        business.check_delete(self.profile, job["id"], job["state"])
        shutil.rmtree(self.jobs_dir / str(job["id"]), ignore_errors=True)
        if not self.profile.deleted_state:
            return  # V4.3.0 only removes the job directory: there is no Deleted state
        job["state"] = int(JobState.Deleted)
        for task in job["tasks"]:
            task["state"] = int(TaskState.Deleted)
        self.dirty = True

    def _stop(self, job: dict[str, Any], state: JobState, reason: str) -> None:
        for task in job["tasks"]:
            if task["state"] in (TaskState.Submitted, TaskState.Queued, TaskState.Running):
                self._kill(task)
                task["state"] = int(state)
                task["error"] = reason
                task["ended"] = _now()
        job["state"] = int(state)
        job["ended"] = _now()
        self.dirty = True

    # -- directories ------------------------------------------------------------------------

    def task_dir(self, job_id: int, task_id: int) -> Path:
        return self.jobs_dir / str(job_id) / str(task_id)

    def job_dir(self, job_id: int) -> Path:
        return self.jobs_dir / str(job_id)

    # -- processes --------------------------------------------------------------------------

    def _exit_file(self, task: dict[str, Any]) -> Path:
        return self.control_dir / f"{task['id']}.exit"

    def _start(self, job: dict[str, Any], task: dict[str, Any]) -> None:
        template = next(t for t in self.config.templates if t.name == task["template"])
        script = template.script
        for name, value in task["values"].items():
            script = script.replace(f"%%{{{name}}}", shlex.quote(value))
        self.control_dir.mkdir(parents=True, exist_ok=True)
        script_file = self.control_dir / f"{task['id']}.sh"
        script_file.write_text(script)
        exit_file = self._exit_file(task)
        stdout = task_file_name(task["files"], FileType.StandardOutputFile)
        stderr = task_file_name(task["files"], FileType.StandardErrorFile)
        wrapper = (
            f"sh {shlex.quote(str(script_file))} > {shlex.quote(stdout)} 2> {shlex.quote(stderr)}; "
            f"echo $? > {shlex.quote(str(exit_file))}.tmp && mv {shlex.quote(str(exit_file))}.tmp {shlex.quote(str(exit_file))}"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.task_dir(job["id"], task["id"])),
            "LEXIS_SANDBOX_JOB_SECONDS": str(self.config.job_seconds),
            "HEAPPE_JOB_ID": str(job["id"]),
            "HEAPPE_TASK_ID": str(task["id"]),
        }
        process = subprocess.Popen(
            ["sh", "-c", wrapper],
            cwd=self.task_dir(job["id"], task["id"]),
            env=env,
            start_new_session=True,  # its own process group: cancel and walltime kill all of it
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._processes[task["id"]] = process
        task.update(pid=process.pid, state=int(TaskState.Running), started=_now())

    def _kill(self, task: dict[str, Any]) -> None:
        pid = task.get("pid")
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        process = self._processes.pop(task["id"], None)
        if process is not None:
            process.wait(timeout=5)

    def _alive(self, task: dict[str, Any]) -> bool:
        process = self._processes.get(task["id"])
        if process is not None:
            return process.poll() is None
        try:
            os.kill(task["pid"], 0)  # a job started by an earlier sandbox process
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def tick(self) -> None:
        """Advance every active job: Submitted -> Queued -> Running -> Finished/Failed."""
        now = _now()
        for job in self.jobs.values():
            if job["state"] not in _ACTIVE:
                continue
            waited = now - job["submitted"]
            if job["state"] == JobState.Submitted and waited >= self.config.queue_seconds / 2:
                job["state"] = int(JobState.Queued)
                for task in job["tasks"]:
                    task["state"] = int(TaskState.Queued)
                self.dirty = True
            if job["state"] == JobState.Queued and waited >= self.config.queue_seconds:
                job["state"] = int(JobState.Running)
                job["started"] = now
                self.dirty = True
            if job["state"] == JobState.Running:
                try:
                    self._advance(job, now)
                except (OSError, ValueError) as exc:  # one bad job must not stop the others
                    logger.exception("sandbox job %s could not advance", job["id"])
                    self._stop(job, JobState.Failed, f"the sandbox could not run the task: {exc}")

    def _advance(self, job: dict[str, Any], now: float) -> None:
        for task in job["tasks"]:
            if task["state"] == TaskState.Queued:
                self._start(job, task)  # tasks run one after the other
                self.dirty = True
                return
            if task["state"] != TaskState.Running:
                continue
            if self._settle(task, now):
                self.dirty = True
                if task["state"] == TaskState.Failed:
                    self._stop(job, JobState.Failed, task["error"])
                    return
                continue
            return
        job["state"] = int(JobState.Finished)
        job["ended"] = now
        self.dirty = True

    def _settle(self, task: dict[str, Any], now: float) -> bool:
        """True if the running task has just ended (its state then says how)."""
        exit_file = self._exit_file(task)
        if exit_file.exists():
            code = int(exit_file.read_text().strip() or "1")
            process = self._processes.pop(task["id"], None)
            if process is not None:
                process.wait(timeout=5)  # reap it: the wrapper exits right after writing the file
            task.update(
                state=int(TaskState.Finished if code == 0 else TaskState.Failed),
                error=None if code == 0 else f"exit status {code}",
                ended=now,
            )
            return True
        if now - task["started"] > task["walltime"]:
            self._kill(task)
            task.update(state=int(TaskState.Failed), error=f"walltime limit of {task['walltime']} s exceeded", ended=now)
            return True
        if not self._alive(task) and not exit_file.exists():
            task.update(state=int(TaskState.Failed), error="the job's process was lost", ended=now)
            return True
        return False

    def kill_all(self) -> None:
        """Stop every running process (a sandbox without --state-dir leaves nothing behind)."""
        for job in self.jobs.values():
            if job["state"] in _ACTIVE:
                self._stop(job, JobState.Canceled, "the sandbox stopped")


def _check_task_file(file_type: FileType, name: str) -> None:
    """A task's stdout/stderr/progress/log file must be a plain path inside its directory."""
    parts = name.replace("\\", "/").split("/")
    if not name or "\x00" in name or name.startswith("/") or ".." in parts:
        raise HEAppEProblem(404, "Validation Problem", f"{file_type.name} {name!r} must be a relative path inside the task directory")


def task_file_name(files: dict[Any, str], file_type: FileType) -> str:
    # JSON round trips (state files) turn the int keys into strings.
    return files.get(int(file_type)) or files[str(int(file_type))]

