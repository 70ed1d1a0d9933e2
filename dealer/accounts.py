"""Registration and login over the store, the password hasher and the token codec."""

from dealer.errors import InvalidCredentialsError, UserExistsError
from dealer.passwords import PasswordHasher
from dealer.store import Store
from dealer.tokens import TokenCodec


class Accounts:
    def __init__(self, store: Store, hasher: PasswordHasher, tokens: TokenCodec) -> None:
        self._store = store
        self._hasher = hasher
        self._tokens = tokens

    @property
    def token_ttl(self) -> int:
        """Lifetime of the tokens that `log_in` issues, in seconds."""
        return self._tokens.ttl

    async def register(self, username: str, password: str) -> None:
        # Checked before hashing to reject a duplicate at once. The store
        # checks again under its lock, in case two registrations race.
        if self._store.has_user(username):
            raise UserExistsError()
        password_hash = await self._hasher.hash(password)
        await self._store.add_user(username, password_hash)

    async def log_in(self, username: str, password: str) -> str:
        """Return a new access token, or raise InvalidCredentialsError.

        An unknown user is checked against a dummy hash, so that the response
        time does not reveal whether the user exists.
        """
        stored_hash = self._store.password_hash(username)
        matches = await self._hasher.verify(password, stored_hash or self._hasher.dummy_hash)
        if stored_hash is None or not matches:
            raise InvalidCredentialsError()
        return self._tokens.issue(username)
