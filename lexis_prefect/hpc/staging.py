"""Moving data between the DDI and the job's directory: stage-in and stage-out tasks, and the output
datasets a stage-out made (found again by their tag, so that no output is staged twice)."""

from __future__ import annotations
import asyncio
import hashlib
import time
import uuid
from datetime import datetime, timezone
from prefect.logging import get_run_logger
from lexis_prefect.config import PollPolicy
from lexis_prefect.ddi import DDIDatasetClient, DDIStagingClient
from lexis_prefect.exceptions import ConfigurationError, LexisAPIError, StagingFailedError
from lexis_prefect.keeper import keeper
from lexis_prefect.models.ddi import DatasetHit, DatasetMetadata, StageRequest, alternate_identifier_metadata, alternate_identifier_query, dataset_path, within_zone, zone_path
from lexis_prefect.models.heappe import JobDirectory
from lexis_prefect.models.job import DataInput, DataOutput, SingleHPCJob, job_relative
from lexis_prefect.hpc.calls import _ddi, _first_try, _session, _step_task, _unsure
from lexis_prefect.hpc.results import HpcJobRef


#: Staging takes seconds to hours: poll soon, then less and less often.
STAGING_POLL = PollPolicy(interval_seconds=0.1, max_interval_seconds=30, backoff_factor=1.5)


#: Longest wait for a lost stage-out's copy to show before duplicates are looked for.
MAX_DUPLICATE_GRACE_SECONDS = 60.0


@_step_task("stage_input", "{group_id}.stage_input[{index}]")
async def stage_input(job: SingleHPCJob, ref: HpcJobRef, index: int, keeper_id: str, group_id: str) -> str:
    """Copy one input dataset from DDI into the job's directory; returns the absolute path on the cluster.

    The target is `<SharedBasepath>/<first task id>/<target_path>`: the staging API takes HPC
    paths as absolute paths on the cluster (see `_job_path`).
    """
    data: DataInput = job.data_inputs[index]
    credentials = keeper(keeper_id).credentials
    directory = await _job_directory(keeper_id, ref)
    target = _job_path(directory, ref, data.target_path)
    request = StageRequest(
        source_system=data.source.resource,
        source_path=dataset_path(data.source.info.dataset_id, job.requirements.project_shortname, data.source.info.path),
        target_system=credentials.endpoints.hpc_staging_system(ref.location),
        target_path=target,
        heappe_url=ref.heappe_url,
        job_id=ref.job_id,
        task_id=ref.task_ids[0],
    )
    async with _ddi(keeper_id) as ddi:
        # Copying the same data into the same place twice is harmless: an unsure submit is repeated.
        request_id = await _unsure(lambda: ddi.stage(request), f"staging input {index}", done=None)
        await ddi.wait(request_id, poll=STAGING_POLL)
    # The answer's target_path is `<ServerHostname>:/<target>` (ddi-service-apis 9e96c41
    # staging/staging/staging_api.py `nfs_to_local_hpc`): a remote spec, not a job path; not returned.
    get_run_logger().info("staged dataset %s into the job directory at %r (%s)", data.source.info.dataset_id, data.target_path, target)
    return target


def _job_path(directory: JobDirectory, ref: HpcJobRef, path: str) -> str:
    """The absolute cluster path of a job step's relative `path`: `<SharedBasepath>/<first task id>/<path>`.

    The staging API copies to and from `<ServerHostname>:/` + the path it is given, using neither
    the HPC system's base path nor the HEAppE job (ddi-service-apis 9e96c41 staging/staging/staging_api.py
    `nfs_to_local_hpc`, `local_hpc_to_nfs`), so the path must be absolute, with its leading `/`
    (cp_ssh.py splits `host:/` + `/abs` into `host` and `/abs`; without the `/` it would be relative to
    the cluster account's home). `SharedBasepath` is the HEAppE job directory, and the first task's
    directory is where the job's paths are relative to, as the Yorc DDI plugin does
    (yorc-ddi-plugin 03d54ff common/ddi_execution.go: `path.Join(<file_transfer.path>, taskID)`).
    `path` is normalised (`models.job.job_relative`: no `..`, no trailing `/`: a trailing `/` would
    make the server copy the directory itself instead of its content, local_hpc_to_nfs's basename).
    """
    relative = job_relative(path)
    absolute = directory.task_path(ref.task_ids[0], relative)
    if not absolute.startswith("/"):
        # HEAppE's SharedBasepath is built from an absolute storage path; anything else would be read
        # relative to the account's home by the staging API's scp: refuse rather than copy elsewhere.
        raise LexisAPIError(
            f"HEAppE job {ref.job_id}: SharedBasepath {directory.path!r} is not an absolute path",
            service="heappe",
            method="POST",
            path="FileTransfer/RequestFileTransfer",
            status=200,
        )
    return absolute


#: Job directories known to this process, by (HEAppE URL, job id, job name); bounded.
_JOB_DIRECTORIES: dict[tuple[str, int, str], JobDirectory] = {}
_JOB_DIRECTORY_LOCKS: dict[tuple[tuple[str, int, str], int], asyncio.Lock] = {}
_JOB_DIRECTORIES_KEPT = 1024


async def _job_directory(keeper_id: str, ref: HpcJobRef) -> JobDirectory:
    """The job's directory (HEAppE `RequestFileTransfer`), asked once per job and process.

    Each ask costs HEAppE a temporary key (V6.3.2 refuses a job's seventh, closed ones included:
    `HEAppEClient.job_directory`), so a step's parallel stage-ins and its stage-outs share one.
    Not stored in the run: a re-attached or restarted run (another process) asks again, which is
    always possible as long as the job exists; the job's directory never changes.
    """
    key = (ref.heappe_url, ref.job_id, ref.name)
    if (known := _JOB_DIRECTORIES.get(key)) is not None:
        return known
    lock = _JOB_DIRECTORY_LOCKS.setdefault((key, id(asyncio.get_running_loop())), asyncio.Lock())
    async with lock:
        if (known := _JOB_DIRECTORIES.get(key)) is not None:
            return known
        async with _session(keeper_id, ref.location) as session:
            directory = await session.heappe.job_directory(ref.job_id)
        if len(_JOB_DIRECTORIES) >= _JOB_DIRECTORIES_KEPT:
            _JOB_DIRECTORIES.pop(next(iter(_JOB_DIRECTORIES)))
        _JOB_DIRECTORIES[key] = directory
    _JOB_DIRECTORY_LOCKS.pop((key, id(asyncio.get_running_loop())), None)
    return directory


@_step_task(
    "stage_output",
    "{group_id}.stage_output[{index}]",
    # A stage-out creates a dataset: a retried run must reuse the one it made, not make another.
    cache_key_fn=lambda context, parameters: _stage_out_key(parameters["ref"], parameters["index"]),
    persist_result=True,
)
async def stage_output(job: SingleHPCJob, ref: HpcJobRef, index: int, keeper_id: str, group_id: str) -> str:
    """Copy one result path of the job's directory into a new DDI dataset; returns the dataset's path.

    The path is the dataset collection's absolute iRODS path, `/<zone>/project/proj<md5>/<dataset id>`
    (`/<zone>/user/proj<md5>/<user>/<dataset id>` for user access): the staging API's answer,
    without the `/<file>` it appends for a single-file source.
    """
    data: DataOutput = job.data_outputs[index]
    kept = keeper(keeper_id)
    credentials, username = kept.credentials, kept.username
    info = data.target.info
    if job_relative(info.path) != ".":
        get_run_logger().warning("data_outputs[%d].target.info.path %r: datasets are created at their root", index, info.path)
    marker = _stage_out_key(ref, index)
    directory = await _job_directory(keeper_id, ref)
    container = zone_path(info.access, job.requirements.project_shortname, username)
    request = StageRequest(
        source_system=credentials.endpoints.hpc_staging_system(ref.location),
        source_path=_job_path(directory, ref, data.source_path),
        target_system=data.target.resource,
        target_path=_stage_out_target(container, marker),
        metadata=DatasetMetadata(
            title=info.title,
            resource_type=info.dataset_type,
            publication_year=str(datetime.now(timezone.utc).year),
            creator=[username] if username else [],
            # The dataset's tag: a stage-out whose answer was lost can be found by it.
            **alternate_identifier_metadata(marker),
        ),
        heappe_url=ref.heappe_url,
        job_id=ref.job_id,
        task_id=ref.task_ids[0],
    )
    async with _ddi(keeper_id) as ddi, _OutputDatasets(keeper_id, request, marker, container) as datasets:
        path = await datasets.earlier(ddi)
        if path is not None:
            get_run_logger().info("output %d was staged out by an earlier attempt: DDI dataset %s", index, path)
            return path
        started, unsure = time.monotonic(), not _first_try()

        async def lost() -> None:
            """`_unsure` asks this after a failure that may have landed: note it, and stage again."""
            nonlocal unsure
            unsure = True

        request_id = await _unsure(
            lambda: ddi.stage(request), f"staging output {index} (an earlier try is looked for by its tag)", done=lost
        )
        try:
            status = await ddi.wait(request_id, poll=STAGING_POLL)
        except StagingFailedError:
            # The server creates (and tags) the dataset before copying into it, and leaves it when the
            # copy fails (ddi-service-apis 9e96c41 staging/staging/irods_transfer.py
            # `initiate_staging_zone_to_irods_transfer`): a later attempt must not take it for done.
            await datasets.discard(ddi)
            raise
        path = _dataset_collection(status.target_path or "", container)
        if unsure:  # an earlier try may have landed too: keep one dataset
            await datasets.keep_only(path, ddi, grace=min(time.monotonic() - started, MAX_DUPLICATE_GRACE_SECONDS))
    get_run_logger().info("staged %r out to DDI dataset %s", data.source_path, path)
    return path


def _stage_out_target(container: str, marker: str) -> str:
    """Where a stage-out writes: the access level's collection, or a dataset collection of ours below it.

    The staging API makes a new dataset (`<uuid1>`) only under a target of exactly 4 `/`-parts once
    `/<zone>/` is prepended, i.e. `project/proj<md5>` or `public/proj<md5>`; any other target is
    written into directly (ddi-service-apis 9e96c41 staging/staging/irods_transfer.py
    `initiate_staging_zone_to_irods_transfer`). The user collection `user/proj<md5>/<user>` has 5, so
    for it the dataset collection is named here, after the marker (created if missing; a repeat
    writes into the same one), and the search lists it as a dataset (a direct child, irodsapi/demo/dataset.py).
    """
    if len(container.split("/")) == 2:
        return container
    return f"{container}/{uuid.uuid5(uuid.NAMESPACE_URL, marker)}"


def _dataset_collection(answer: str, container: str) -> str:
    """The dataset collection `/<zone>/<container>/<id>` of a completed stage-out's `target_path`.

    The answer is `/<zone>/<container>/<id>`, or `.../<id>/<file>` for a single-file source
    (irods_transfer.py `initiate_staging_zone_to_irods_transfer`); anything else is not understood.
    """
    parts = [p for p in answer.split("/") if p]
    inner = container.split("/")
    if len(parts) < len(inner) + 2 or parts[1 : 1 + len(inner)] != inner:
        raise LexisAPIError(
            f"ddi stage: completed with target_path {answer!r}, not a dataset under /<zone>/{container}",
            service="ddi",
            method="GET",
            path="/stage/<request id>",
            status=200,
        )
    return "/" + "/".join(parts[: 2 + len(inner)])


class _OutputDatasets:
    """The datasets a stage-out made, found by its tag through the DDI dataset search.

    The staging API has no idempotency key and cannot be asked about a request whose answer
    was lost. So: before staging, reuse a dataset an earlier attempt made; after
    a stage-out that had to be repeated, wait as long as ours took (an earlier copy started
    before ours) and delete any other dataset with the same tag. Without a dataset API (no
    `dataset_url`), a repeated stage-out may leave a duplicate, and a warning says so.
    Limit [I]: the published server creates the tagged collection before it copies into it
    (irods_transfer.py `initiate_staging_zone_to_irods_transfer`), so a copy still under way is
    visible to the search with part of its files, and `earlier` cannot tell it from a finished one;
    a failed copy's leftover is deleted (`discard`).

    Datasets are compared as `/<zone>/<container>/<internalID>`, the form of the staging answer
    (the search's `location` gives zone and internalID); they are deleted by the path `/delete`
    wants, `<container>/<internalID>`, relative to the system's base path (staging_api.py `delete_irods`).
    """

    def __init__(self, keeper_id: str, request: StageRequest, marker: str, container: str) -> None:
        kept = keeper(keeper_id)
        self.request, self.query, self.container = request, alternate_identifier_query(marker), container
        try:
            self.client: DDIDatasetClient | None = kept.credentials.get_client("dataset", access_token=kept.access_token)
        except ConfigurationError:
            self.client = None

    async def __aenter__(self) -> _OutputDatasets:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client is not None:
            await self.client.aclose()

    def _path(self, hit: DatasetHit) -> str:
        return f"/{hit.location.zone}/{self.container}/{hit.location.internal_id}"

    async def _paths(self) -> list[str]:
        if self.client is None:
            return []
        hits = await self.client.search(self.query)
        # Only datasets of our container: the tag is ours, but a search lists every access level.
        return sorted({self._path(hit) for hit in hits if self._in_container(hit)})

    def _in_container(self, hit: DatasetHit) -> bool:
        access = self.container.split("/", 1)[0]
        return hit.location.access == access

    async def earlier(self, ddi: DDIStagingClient) -> str | None:
        """A dataset an earlier attempt made, if any (and only one is kept)."""
        paths = await self._paths()
        if paths:
            await self._delete_all_but(paths[0], paths, ddi)
        return paths[0] if paths else None

    async def keep_only(self, path: str, ddi: DDIStagingClient, grace: float) -> None:
        """After a repeated stage-out: give an earlier copy `grace` seconds to show, then keep `path` only."""
        if self.client is None:
            get_run_logger().warning("no DDI dataset API configured: a duplicate of dataset %s may exist", path)
            return
        await asyncio.sleep(grace)
        await self._delete_all_but(path, await self._paths(), ddi)

    async def discard(self, ddi: DDIStagingClient) -> None:
        """After a failed stage-out: delete every dataset with our tag (best effort, logged)."""
        try:
            await self._delete_all_but(None, await self._paths(), ddi)
        except Exception as exc:  # the stage-out's own failure is what gets raised
            get_run_logger().warning("could not delete the dataset a failed stage-out left: %s", exc)

    async def _delete_all_but(self, path: str | None, paths: list[str], ddi: DDIStagingClient) -> None:
        for other in (p for p in paths if p != path):
            try:
                await ddi.wait(await ddi.delete(self.request.target_system, within_zone(other)), operation="delete", poll=STAGING_POLL)
            except StagingFailedError:
                if other in await self._paths():
                    raise
                # else an earlier delete, whose answer was lost, took it: "does not exist"
            get_run_logger().warning("deleted DDI dataset %s: a duplicate or leftover of a stage-out", other)


def _stage_out_key(ref: HpcJobRef, index: int) -> str:
    """One cache entry per output of one job of one run (HEAppE ids alone repeat across sandboxes)."""
    return "lexis-stage-out-" + hashlib.sha1(f"{ref.heappe_url}|{ref.job_id}|{ref.name}|{index}".encode()).hexdigest()
