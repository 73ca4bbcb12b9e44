"""One router module per resource; ``ems.api.app.ROUTERS`` lists them."""
