"""Failures that the API reports to the client as `{"Error": message}`.

The HTTP status of each class is chosen in one place, `dealer.middlewares`.
"""


class DealerError(Exception):
    """Base class; `message` is the default text sent to the client."""

    message = "Request failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def text(self) -> str:
        return str(self)


class InvalidInputError(DealerError):
    """The request body or the mark breaks an input rule."""


class UserExistsError(DealerError):
    message = "User already exists"


class InvalidCredentialsError(DealerError):
    message = "Invalid credentials"


class AuthenticationError(DealerError):
    """The access token is missing or invalid; the message explains why."""


class MissingTokenError(AuthenticationError):
    message = "Missing Authorization header"


class AutoExistsError(DealerError):
    message = "Auto with that mark exists"


class AutoNotFoundError(DealerError):
    message = "Auto with that mark not found"


class NoAutosError(DealerError):
    message = "No one autos found in DataBase"


class StoreUnavailableError(DealerError):
    """A change could not be saved to db.json; nothing was changed."""


class StartupError(Exception):
    """The server cannot start; the message explains why and what to do."""


class DatabaseFileError(StartupError):
    """db.json cannot be used: invalid JSON, a wrong shape, or unreadable."""


class DatabaseLockedError(StartupError):
    """Another server process already owns db.json."""


class SecretFileError(StartupError):
    """The token signing secret file cannot be read or created."""
