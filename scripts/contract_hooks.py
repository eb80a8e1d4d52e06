"""schemathesis hooks for scripts/contract.sh (loaded through SCHEMATHESIS_HOOKS).

One check is replaced, not dropped: `positive_data_acceptance` fails when a request
that the OpenAPI document allows is refused. A JSON Schema cannot say which categories,
partners or subscribers exist, so a request naming one that does not is refused with
422 although its shape is valid. This check is `positive_data_acceptance` except for
such answers: a 422 whose every error names a missing reference (and nothing else).
Any other refusal of valid data fails as before.
"""

import json

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

# The messages of the store and the services for a reference to nothing.
MISSING_REFERENCE = (
    "no category has the slug ",
    "no partner has the id ",
    "no subscriber has the id ",
)


def _only_missing_references(response) -> bool:
    if response.status_code != 422:
        return False
    try:
        errors = json.loads(response.content or b"{}").get("errors") or []
    except (ValueError, AttributeError):
        return False
    return bool(errors) and all(
        isinstance(e, dict) and str(e.get("message", "")).startswith(MISSING_REFERENCE)
        for e in errors
    )


@schemathesis.check
def positive_data_acceptance_but_missing_references(ctx, response, case):
    if _only_missing_references(response):
        return None
    return positive_data_acceptance(ctx, response, case)
