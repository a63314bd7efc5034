"""Sandbox HEAppE: one emulated HEAppE instance per location.

`api.py` is the REST API (session codes, file transfer keys, the views of jobs and their
files); `jobs.py` the jobs themselves, each task a local process; `catalogue.py` the cluster
and its templates; what HEAppE refuses, and how, `rules.py` (the REST layer) and
`business_rules.py` (the business logic); `versions.py` what differs between the HEAppE tags.
"""

from lexis_prefect.sandbox.heappe.api import HEAppEProblem, HEAppEState, heappe_router

__all__ = ["HEAppEProblem", "HEAppEState", "heappe_router"]
