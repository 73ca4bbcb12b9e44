"""The driver web pages: scan the QR code on a charger, sign in, pay, charge, get a receipt.

Server-rendered HTML (Jinja2) that works without JavaScript; ``static/driver.js`` only
follows a charge live. Every visible string goes through gettext (``ems.web.i18n``). The
composition root builds the router with ``web_router(settings, services)`` and includes it in
the API's FastAPI application; this package imports no other adapter.
"""
