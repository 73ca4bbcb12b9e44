"""The driver pages, one module per concern, each with ``register(router, site)`` adding its routes."""
