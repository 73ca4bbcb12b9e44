"""REST API and web pages (FastAPI): create_app(settings, services)."""
