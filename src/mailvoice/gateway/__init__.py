"""``mailvoice gateway``: EmailAI's Ollama endpoint, with drafting routed to each user's voice model.

See ``docs/gateway.md``. ``create_app(GatewayConfig(...))`` gives the ASGI app; ``serve`` runs it.
"""

from .app import Gateway, GatewayConfig, create_app, serve
from .users import Route, UserDirectory, load_users_map

__all__ = ["Gateway", "GatewayConfig", "Route", "UserDirectory", "create_app", "load_users_map", "serve"]
