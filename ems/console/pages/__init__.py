"""The console's pages, one module per concern, each with ``register(console)`` adding its routes."""
