"""lexis-prefect: LEXIS HPC workflows (AAI, DDI staging, HEAppE) on Prefect 3."""

from lexis_prefect.aai import AAIClient
from lexis_prefect.config import DEFAULT_TIMEOUT, PollPolicy, RetryPolicy
from lexis_prefect.ddi import DDIStagingClient
from lexis_prefect.exceptions import (
    AuthenticationError,
    ConfigurationError,
    JobValidationError,
    LexisAPIError,
    LexisError,
    LexisTransportError,
    NotFoundError,
    StagingFailedError,
    StagingTimeoutError,
)
from lexis_prefect.heappe import HEAppEClient
from lexis_prefect.models import SingleHPCJob, TokenSet

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "AAIClient",
    "AuthenticationError",
    "ConfigurationError",
    "DDIStagingClient",
    "HEAppEClient",
    "JobValidationError",
    "LexisAPIError",
    "LexisError",
    "LexisTransportError",
    "NotFoundError",
    "PollPolicy",
    "RetryPolicy",
    "SingleHPCJob",
    "StagingFailedError",
    "StagingTimeoutError",
    "TokenSet",
    "__version__",
]
