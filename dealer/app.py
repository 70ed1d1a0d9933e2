"""The application factory."""

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from dealer.accounts import Accounts
from dealer.config import MAX_BODY_BYTES, Config
from dealer.docs import setup_docs
from dealer.handlers import routes
from dealer.jwt_secret import load_or_create_secret, secret_path
from dealer.keys import ACCOUNTS, CONFIG, STORE, TOKENS
from dealer.middlewares import auth_middleware, error_middleware
from dealer.passwords import PasswordHasher, hashing_executor
from dealer.store import Store
from dealer.tokens import TokenCodec

logger = logging.getLogger(__name__)


def create_app(config: Config) -> web.Application:
    """Build the dealer application; the store opens when the app starts."""
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES)
    app[CONFIG] = config
    app.cleanup_ctx.append(_services)
    app.add_routes(routes)
    setup_docs(app)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    """Open the store and build the objects that handlers use; close them on shutdown."""
    config = app[CONFIG]
    executor = hashing_executor()
    hasher = PasswordHasher(executor)
    store = Store(config.db_path, hasher)
    await store.open()

    try:
        secret = config.jwt_secret or load_or_create_secret(secret_path(config.db_path))
        tokens = TokenCodec(secret, config.token_ttl)
        app[STORE] = store
        app[TOKENS] = tokens
        app[ACCOUNTS] = Accounts(store, hasher, tokens)
        yield
    finally:
        await store.close()
        executor.shutdown()
