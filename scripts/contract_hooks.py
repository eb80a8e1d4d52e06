"""schemathesis hooks for scripts/contract.sh (loaded through SCHEMATHESIS_HOOKS).

One check is replaced, not dropped: `positive_data_acceptance` fails when a request
that the OpenAPI document allows is refused. Some rules are about stored data or
between fields, which a JSON Schema cannot say: which categories, partners and
subscribers exist, that an event does not end before it starts, that a category is
not moved under itself, that an item's language versions are each in a language of
their own and its event words are for events. A request breaking one of those is refused with 422 although
its shape is valid. This check is `positive_data_acceptance` except for such answers:
a 422 whose every error is one of those rules (and nothing else). Any other refusal of
valid data fails as before.
"""

import json

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

# The messages of the domain, the store and the services for those rules.
MISSING_REFERENCE = (
    "no category has the slug ",
    "no partner has the id ",
    "no subscriber has the id ",
    "must not be before event.starts_at",
    " itself or one of its descendants",
    "(a clock change)",
    # Language versions: against the item's own language or the other versions, or
    # against what the stored item is (an event or not, its original, its count).
    "is the original's language",
    " is given twice",
    "is only for events (the item has no event)",
    "(the original's venue is the event's venue)",
    "is the item's original and an item always has one",
    "versions besides the original already",
)


def _only_missing_references(response) -> bool:
    if response.status_code != 422:
        return False
    try:
        errors = json.loads(response.content or b"{}").get("errors") or []
    except (ValueError, AttributeError):
        return False
    return bool(errors) and all(
        isinstance(e, dict) and any(m in str(e.get("message", "")) for m in MISSING_REFERENCE)
        for e in errors
    )


@schemathesis.check
def positive_data_acceptance_but_missing_references(ctx, response, case):
    if _only_missing_references(response):
        return None
    return positive_data_acceptance(ctx, response, case)
