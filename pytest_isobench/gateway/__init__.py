"""The model gateway: agents reach their model through it, keys stay outside, the harness counts tokens.

``server`` (the proxy, aiohttp) is imported on use; the rest loads without it.
"""

from .access import NETWORK_MODES, ModelAccess, account, direct_access, gateway_access, resolve_network
from .ledger import CALLS_FILE, TOKEN_PREFIX, Ledger
from .upstreams import PROVIDERS, Upstream, upstreams_from_env

__all__ = [
    "CALLS_FILE",
    "NETWORK_MODES",
    "PROVIDERS",
    "TOKEN_PREFIX",
    "Ledger",
    "ModelAccess",
    "Upstream",
    "account",
    "direct_access",
    "gateway_access",
    "resolve_network",
    "upstreams_from_env",
]
