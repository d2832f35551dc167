"""Runs one Lambda function's handler the way the Lambda Python runtime does, in a clean interpreter.

Started by tests/infra/test_emulated_stack.py as ``python3.X -S -B lambda_driver.py REQUEST`` with
PYTHONPATH = the unpacked deployment.zip, then a folder holding only boto3, botocore and their
dependencies (what the runtime provides): no site-packages, no project checkout. Imports nothing
from the test suite. REQUEST is a JSON file: {"handler": "app.app", "events": [...], "out": path}.

Writes to ``out``: each event's result (or the exception it raised), the AWS API calls the
handler made (service signing name and operation, recorded at botocore's client), the
management endpoint the settings give without the test's override, and any module loaded from
outside the zip, the runtime's folder and the standard library.
"""

import importlib
import json
import os
import sys
import traceback

request_path = sys.argv[1]
with open(request_path) as f:
    request = json.load(f)

import botocore.client  # noqa: E402 - the runtime's botocore, recorded before the app imports it

calls: list[list[str]] = []
_make_api_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]  # private in botocore-stubs


def _recording(self, operation_name, api_params):
    calls.append([self.meta.service_model.signing_name, operation_name])
    return _make_api_call(self, operation_name, api_params)


botocore.client.BaseClient._make_api_call = _recording  # type: ignore[attr-defined]


class LambdaContext:
    def __init__(self):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"))
        self.aws_request_id = "00000000-0000-4000-8000-000000000000"
        self.invoked_function_arn = f"arn:aws:lambda:{os.environ.get('AWS_REGION')}:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "emulated"

    def get_remaining_time_in_millis(self):
        return 30_000


module_name, _, attribute = request["handler"].rpartition(".")
handler = getattr(importlib.import_module(module_name), attribute)
results = []
for event in request["events"]:
    try:
        results.append({"result": handler(event, LambdaContext())})
    except Exception as exc:  # the runtime reports it as the invocation's error
        results.append({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})

from chalicelib import settings  # noqa: E402

without_override = {k: v for k, v in os.environ.items() if k != "WEBSOCKET_ENDPOINT"}
allowed_roots = [os.path.abspath(p) for p in os.environ["PYTHONPATH"].split(os.pathsep)]
allowed_roots += [os.path.abspath(p) for p in (sys.base_prefix, sys.base_exec_prefix)]
foreign = sorted(
    {
        name
        for name, module in list(sys.modules.items())
        if name not in ("__main__", "__mp_main__")
        and getattr(module, "__file__", None)
        and not any(os.path.abspath(str(module.__file__)).startswith(root + os.sep) for root in allowed_roots)
    }
)
app_module = sys.modules["app"]
with open(request["out"], "w") as f:
    json.dump(
        {
            "results": results,
            "calls": calls,
            "foreign_modules": foreign,
            "management_endpoint": settings.load(without_override).management_endpoint,
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "app_bytecode": app_module.__cached__ if os.path.exists(app_module.__cached__ or "") else None,
        },
        f,
        default=str,
    )
