"""Access tokens: HS256 JWTs naming the user in `sub`."""

import time

import jwt

from dealer.errors import AuthenticationError

ALGORITHM = "HS256"
# Verified tokens kept in memory; the oldest entry is evicted when full.
CACHE_SIZE = 10_000


class TokenCodec:
    """Issues and verifies access tokens, remembering tokens it already verified.

    A cache hit skips the HMAC and JSON work of a full decode but still
    honours `exp`. The cache is keyed by the whole token string, so a token
    that differs in any byte is decoded and verified again.
    """

    def __init__(self, secret: bytes, ttl: int) -> None:
        self._secret = secret
        self.ttl = ttl
        self._verified: dict[str, tuple[str, float]] = {}

    def issue(self, username: str) -> str:
        now = int(time.time())
        claims = {"sub": username, "iat": now, "exp": now + self.ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> str:
        """Return the username a token was issued to; raise AuthenticationError if it is not valid."""
        cached = self._verified.get(token)
        if cached is not None:
            username, expires_at = cached
            if time.time() < expires_at:
                return username
            del self._verified[token]
            raise AuthenticationError("Token has expired")

        claims = self._decode(token)
        username = claims["sub"]

        if len(self._verified) >= CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (username, claims["exp"])
        return username

    def _decode(self, token: str) -> dict:
        try:
            return jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("Token has expired") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("Token signature is invalid") from None
        except jwt.InvalidAlgorithmError:
            raise AuthenticationError(f"Token algorithm is not allowed; only {ALGORITHM} is accepted") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationError(f"Token is missing the '{error.claim}' claim") from None
        except jwt.DecodeError:
            raise AuthenticationError("Token is malformed") from None
        except jwt.InvalidTokenError as error:
            raise AuthenticationError(f"Token is invalid: {error}") from None
