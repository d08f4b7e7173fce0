"""Schemathesis hooks of scripts/fuzz_api.sh (loaded through SCHEMATHESIS_HOOKS).

They drop the failures that are not disagreements between the schema and the server: a
schema-valid request refused for a rule that no schema can state. Each rule is also in
the schema, in words, and the hooks drop only the refusals that name it.
"""

import schemathesis
from schemathesis.specs.openapi.checks import (
    AcceptedNegativeData,
    EnsureResourceAvailability,
    RejectedPositiveData,
)

TASK_DEFAULT_STEPS = 10


def _refusal(response):
    """The `error` of a refusal's JSON body, or {}."""
    try:
        return response.json().get("error") or {}
    except Exception:  # not JSON
        return {}


def _task_step_beyond_steps(case, error):
    """A task's `fail_at_step` is at most its `steps` (10 when absent or null): one field
    bounded by another, which JSON Schema has no keyword for."""
    fields = (error.get("details") or {}).get("fields") or {}
    body = case.body if isinstance(case.body, dict) else {}
    steps, fail = body.get("steps"), body.get("fail_at_step")
    steps = TASK_DEFAULT_STEPS if steps is None else steps
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (steps, fail))
    return numbers and fail > steps and list(fields) == ["fail_at_step"]


def _only_field(error, field, words):
    """The refusal names `field` alone, with `words` in its message."""
    fields = (error.get("details") or {}).get("fields") or {}
    return list(fields) == [field] and words in str(fields[field])


def _only_fields(error, rules):
    """The refusal names only fields of `rules` ({field: words}), each with its words."""
    fields = (error.get("details") or {}).get("fields") or {}
    return bool(fields) and all(f in rules and rules[f] in str(m) for f, m in fields.items())


# Events: `end` after `start` bounds one field by another (no JSON Schema keyword), and which
# well-formed names the tz database holds is its own list (the schema states their form).
EVENT_RULES = {"end": "must be after start", "timezone": "unknown time zone"}


# Coaches: which users exist to link a coach to is stored state, and the tz database's names
# its own list, as for events ...
COACH_RULES = {"user_id": "is not a registered user", "timezone": "unknown time zone"}
# ... and a schedule's rules bound fields by others: a window's end after its start, an
# exception's start and end given together, one weekday's windows apart.
SCHEDULE_WORDS = ("must be before end", "give both start and end, or neither", "overlap")


def _coach_rules(error):
    fields = (error.get("details") or {}).get("fields") or {}
    return bool(fields) and all(
        (f in COACH_RULES and COACH_RULES[f] in str(m))
        or (f in ("availability", "exceptions") and any(w in str(m) for w in SCHEDULE_WORDS))
        for f, m in fields.items()
    )


# Per operation: whether a 400 to a schema-valid request is for a rule no schema can state.
UNSTATABLE = {
    ("POST", "/api/v1/eventstreammonitor/tasks"): _task_step_beyond_steps,
    # A confirmation code has its form in the schema (six digits), but which six digits are
    # right only the account's owner knows: a well-formed wrong code is a 400
    # `invalid_argument` (clients rely on that answer).
    ("POST", "/users/confirm-registration"): lambda case, error: error.get("message")
    == "invalid or expired code",
    ("POST", "/auth/confirm-forgot-password"): lambda case, error: error.get("message")
    == "invalid or expired code",
    # Nobody can ask themself to become their contact: who that is depends on the caller,
    # not on the request's form.
    ("POST", "/chat-requests/send"): lambda case, error: error.get("message")
    == "cannot send a chat request to yourself",
    # Training: an answer index is bounded by its question's choices, the answers by the
    # assessment's questions, and lesson ids by the course's lessons, all stored state.
    ("POST", "/training/courses/{id}/assessments"): lambda case, error: _only_field(
        error, "questions", "answer must be a choice index"
    ),
    ("PUT", "/training/courses/{id}"): lambda case, error: _only_field(
        error, "lessons", "is not a lesson of this course"
    ),
    ("PUT", "/training/courses/{id}/progress"): lambda case, error: _only_field(
        error, "lesson_id", "is not a lesson of this course"
    ),
    ("POST", "/events"): lambda case, error: _only_fields(error, EVENT_RULES),
    ("PUT", "/events/{id}"): lambda case, error: _only_fields(error, EVENT_RULES),
    ("POST", "/training/assessments/{id}/submit"): lambda case, error: _only_field(
        error, "answers", ""
    )
    or _only_field(error, "course_id", "is not this assessment's course"),
    # Coaching: a window of at most 62 days bounds `to` by `from` (one field by another).
    ("GET", "/coaching/coaches/{id}/availability"): lambda case, error: _only_field(
        error, "to", "must be at most 62 days after from"
    )
    or _only_field(error, "to", "must be after from"),
    ("POST", "/coaching/coaches"): lambda case, error: _coach_rules(error),
    ("PUT", "/coaching/coaches/{id}"): lambda case, error: _coach_rules(error),
    # The provider's user info exists for a session signed in through SSO only: the
    # fuzzing user signed in with a password (which session a token names is state).
    ("GET", "/auth/sso/user-info"): lambda case, error: error.get("message")
    == "not an sso session: no provider user info",
}


# Stateful links schemathesis infers from a create to an operation on a different resource:
# `POST /events` creates the event, not the caller's registration, so cancelling a
# registration never made is a 404 for the registration (the event itself is there).
OTHER_RESOURCE = {
    ("DELETE", "/events/{id}/register"): "not registered for this event",
}


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    # A schema-violating body past the body limit is refused with 413, which schemathesis's
    # list of refusals lacks: it was refused, not accepted.
    if isinstance(failure, AcceptedNegativeData) and response.status_code == 413:
        details = _refusal(response).get("details") or {}
        return details.get("reason") != "body_too_large"
    if isinstance(failure, EnsureResourceAvailability):
        message = OTHER_RESOURCE.get((case.method.upper(), case.path))
        return not (message and _refusal(response).get("message") == message)
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return True
    unstatable = UNSTATABLE.get((case.method.upper(), case.path))
    return not (unstatable and unstatable(case, _refusal(response)))
