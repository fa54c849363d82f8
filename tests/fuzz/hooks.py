"""schemathesis hooks for fuzzing a live server (loaded through SCHEMATHESIS_HOOKS).

The fuzzer acts as FUZZ_USERNAME: it logs in afresh every couple of seconds (the fuzzed
POST /auth/logout ends its sessions), and it never deactivates or re-passwords the
accounts the run depends on (FUZZ_PROTECTED_IDS), which would end the run's access.
"""

import json
import os
import urllib.request

import schemathesis

PROTECTED_IDS = {i for i in os.environ.get("FUZZ_PROTECTED_IDS", "").split(",") if i}
ABSENT_ID = 2**62


@schemathesis.auth(refresh_interval=2)
class FreshToken:
    def get(self, case, context):
        body = json.dumps(
            {"username": os.environ["FUZZ_USERNAME"], "password": os.environ["FUZZ_PASSWORD"]}
        ).encode()
        request = urllib.request.Request(
            f"{os.environ['FUZZ_BASE_URL']}/auth/token",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(context, case, kwargs):
    """Point changes aimed at the run's own accounts at an id that does not exist (404)."""
    # Ids arrive as numbers from generation and as strings from links between responses.
    user_id = str((case.path_parameters or {}).get("user_id"))
    changes = case.method.upper() in {"PATCH", "DELETE"}
    account_paths = {"/users/{user_id}", "/users/{user_id}/sessions"}
    if case.operation.path in account_paths and changes and user_id in PROTECTED_IDS:
        case.path_parameters["user_id"] = ABSENT_ID
