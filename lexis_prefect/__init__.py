"""lexis-prefect: LEXIS HPC workflows (AAI, DDI staging, HEAppE) on Prefect 3.

The public names below are imported on first use (PEP 562), not with the package: the Airflow
import hook (``lexis_prefect.airflow._finder``) is installed at every interpreter start by a
``.pth`` file and imports this package, so importing it must cost next to nothing.
``from lexis_prefect import AAIClient`` works as before.
"""

from lexis_prefect._lazy import lazy_getattr

__version__ = "0.1.0.dev0"

# public name -> the submodule that defines it
_LAZY: dict[str, str] = {
    "AAIClient": "aai",
    "LexisCredentials": "blocks",
    "LexisEndpoints": "blocks",
    "DEFAULT_TIMEOUT": "config",
    "PollPolicy": "config",
    "RetryPolicy": "config",
    "DDIDatasetClient": "ddi",
    "DDIStagingClient": "ddi",
    "AuthenticationError": "exceptions",
    "ConfigurationError": "exceptions",
    "JobValidationError": "exceptions",
    "LexisAPIError": "exceptions",
    "LexisError": "exceptions",
    "LexisTransportError": "exceptions",
    "NotFoundError": "exceptions",
    "StagingFailedError": "exceptions",
    "StagingTimeoutError": "exceptions",
    "HEAppEClient": "heappe",
    "SingleHPCJob": "models",
    "TokenSet": "models",
}

# Submodules the package used to import eagerly: ``import lexis_prefect; lexis_prefect.heappe``
# keeps working.
_EAGER_BEFORE = frozenset({"_http", "aai", "config", "ddi", "exceptions", "heappe", "models"})

__all__ = [
    "DEFAULT_TIMEOUT",
    "AAIClient",
    "AuthenticationError",
    "ConfigurationError",
    "DDIDatasetClient",
    "DDIStagingClient",
    "HEAppEClient",
    "JobValidationError",
    "LexisAPIError",
    "LexisCredentials",
    "LexisEndpoints",
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

# ``typing`` alone would cost ~10 ms at every interpreter start; type checkers treat any
# name ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from lexis_prefect.aai import AAIClient
    from lexis_prefect.blocks import LexisCredentials, LexisEndpoints
    from lexis_prefect.config import DEFAULT_TIMEOUT, PollPolicy, RetryPolicy
    from lexis_prefect.ddi import DDIDatasetClient, DDIStagingClient
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


__getattr__ = lazy_getattr(
    globals(),
    {
        **{name: (f"{__name__}.{module}", name) for name, module in _LAZY.items()},
        **{name: (f"{__name__}.{name}", None) for name in _EAGER_BEFORE},
    },
)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
