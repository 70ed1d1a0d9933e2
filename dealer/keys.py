"""Typed keys of the app-wide objects that handlers reach through `request.app`."""

from aiohttp import web

from dealer.accounts import Accounts
from dealer.config import Config
from dealer.store import Store
from dealer.tokens import TokenCodec

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
TOKENS = web.AppKey("tokens", TokenCodec)
ACCOUNTS = web.AppKey("accounts", Accounts)
