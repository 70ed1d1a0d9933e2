"""dealer: a REST API for a car dealer that keeps its users and autos in db.json."""

from dealer.app import create_app
from dealer.config import Config

__all__ = ["Config", "create_app"]
