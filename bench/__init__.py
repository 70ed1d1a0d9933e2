"""Load benchmark of the dealer API against a bare aiohttp app: `python -m bench --help`."""
