"""The HTTP API: `create_app(settings)` builds it; one router module per audience."""

from registry.api.app import create_app

__all__ = ["create_app"]
