"""What services refuse, and how the API answers it.

Every refusal carries a sentence for a person to read; the API turns it into a 4xx.
"""


class ServiceError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidInput(ServiceError):
    status_code = 400
    code = "invalid"


class NotAllowed(ServiceError):
    status_code = 403
    code = "not_allowed"


class InvalidTransition(ServiceError):
    status_code = 409
    code = "invalid_transition"


class GuardrailViolation(ServiceError):
    status_code = 409
    code = "plan_more_severe_than_fault"
