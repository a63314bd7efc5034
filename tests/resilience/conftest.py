"""The fault suite of issue 8: the e2e fixtures (a sandbox subprocess, LEXIS_* pointed at it), reused."""

from tests.e2e.conftest import demo_token, fast_step_retries, lexis_env, load_flow_module, sandbox

__all__ = ["demo_token", "fast_step_retries", "lexis_env", "load_flow_module", "sandbox"]  # re-exported for pytest
