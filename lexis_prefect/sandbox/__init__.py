"""The LEXIS sandbox: a loopback server speaking the AAI, DDI staging (and dataset search) and HEAppE APIs.

It shares only `lexis_prefect.models` with the library, so clients and sandbox
agree on payloads while the core never depends on the sandbox.
"""

from lexis_prefect.sandbox.app import create_app
from lexis_prefect.sandbox.config import FaultConfig, SandboxConfig, SandboxLocation
from lexis_prefect.sandbox.ddi import DEMO_DATASET_ID
from lexis_prefect.sandbox.server import SandboxProcess, serve

__all__ = ["DEMO_DATASET_ID", "FaultConfig", "SandboxConfig", "SandboxLocation", "SandboxProcess", "create_app", "serve"]
