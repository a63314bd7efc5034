"""The HPC job step: `build_hpc_job_step`, a Prefect subflow of thin tasks over the LEXIS clients.

create_job -> stage_input (parallel) -> submit_job -> wait_for_job -> stage_output (parallel)
-> HpcJobResult; the job is validated and its locations chosen before any of them, as plain
calls (a task run each cost more than the work).

The steps of a run share one HEAppE client per location (`locations.LocationSession`):
one session code, one connection pool, and one list read serving the polls of many jobs.
A task that fails for want of an answer (each call already retried by its client) is
retried as a whole (`STEP_RETRIES`): every task can be repeated safely, as below.

Re-attaching instead of resubmitting: the HEAppE job gets a name derived from
the flow run and the step (`<job_name> <digest>`), and `create_job` first looks
for a job of that name. A retried or restarted run, or a create whose answer
was lost, finds its job again; submit is skipped when the job is past
Configuring, and a stage-out already done is served from Prefect's result
cache. A job that Failed stays failed for that run: start a new run to retry.
A non-idempotent call that got no answer (or a 5xx) is repeated only once the
server shows it did not happen (`_unsure`).

Failed or cancelled jobs: the subflow fails with the tail of stderr, outputs
are NOT staged out (partial results must not pass for results), and the job's
directory is left in HEAppE for inspection.


In a deployment run the wait may end with the whole run suspending until a job ends (`suspend`);
`lexis_prefect.watch` resumes it, and the resumed run re-attaches as above. A crash leaves the
jobs running; a user's cancel cancels them (`hooks`).

Parts: `step` (the subflow), `jobs` (create, submit, stop), `staging` (stage-in, stage-out),
`waiting` (following the job), `suspend` (suspending the run while its steps wait), `records`
(jobs kept in Prefect for hooks and the watcher), `hooks` (cancel and crash), `fanout` (many
steps in one run), `calls` (retries, unsure calls), `summary` (the job-summary artifact),
`results` (the models they pass).
"""

from lexis_prefect.hpc.calls import STEP_RETRIES, STEP_RETRY_DELAYS, UNSURE_ATTEMPTS
from lexis_prefect.hpc.fanout import STEP_STARTS, StepTurns, in_turn
from lexis_prefect.hpc.hooks import cancel_hpc_jobs, cancel_recorded_jobs, hpc_flow
from lexis_prefect.hpc.jobs import create_job, submit_job
from lexis_prefect.hpc.records import RECORDS_PAGE, recorded_jobs
from lexis_prefect.hpc.results import HpcJobRef, HpcJobResult, JobOutcome
from lexis_prefect.hpc.staging import STAGING_POLL, stage_input, stage_output
from lexis_prefect.hpc.step import build_hpc_job_step
from lexis_prefect.hpc.waiting import JOB_POLL, TAIL_POLL, wait_for_job
from lexis_prefect.resolve import run_job_name

__all__ = [
    "JOB_POLL",
    "RECORDS_PAGE",
    "STAGING_POLL",
    "STEP_RETRIES",
    "STEP_RETRY_DELAYS",
    "STEP_STARTS",
    "TAIL_POLL",
    "UNSURE_ATTEMPTS",
    "HpcJobRef",
    "HpcJobResult",
    "JobOutcome",
    "StepTurns",
    "build_hpc_job_step",
    "cancel_hpc_jobs",
    "cancel_recorded_jobs",
    "create_job",
    "hpc_flow",
    "in_turn",
    "recorded_jobs",
    "run_job_name",
    "stage_input",
    "stage_output",
    "submit_job",
    "wait_for_job",
]
