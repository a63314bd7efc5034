"""Run the native `lexis_hpc_simple` flow in a process of its own, for crash tests (tests/e2e/test_resilience.py).

    LEXIS_* (the sandbox), PREFECT_API_URL (the test's Prefect server),
    LEXIS_ACCESS_TOKEN (the user's token) and optionally LEXIS_RUN_KEY in the environment;
    python tests/e2e/run_flow_script.py

Prints the flow's result as JSON on success. The tests kill it with SIGKILL mid-run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path

from pydantic import SecretStr

FLOW_FILE = Path(__file__).parents[2] / "flows" / "lexis_hpc_simple.py"


def main() -> int:
    if not os.environ.get("PREFECT_API_URL"):
        print("PREFECT_API_URL must point at the test's Prefect server", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("flows_lexis_hpc_simple", FLOW_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    result = asyncio.run(
        module.lexis_hpc_simple(
            access_token=SecretStr(os.environ["LEXIS_ACCESS_TOKEN"]),
            run_key=os.environ.get("LEXIS_RUN_KEY") or None,
        )
    )
    print(result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
