"""The small Protocols the core talks through; adapters implement them, the composition root wires them.

Imports only ``ems.domain``. One module per consumer group, each Protocol small, so a caller
depends only on what it uses:

- ``ems.ports.control``: ``Authorizer`` (may this card charge?), ``ChargerControl`` (commands to stations)
- ``ems.ports.grid``: ``CapacitySignals`` (the one door for capacity signals), ``SiteLoad``
- ``ems.ports.monitor``: ``SiteMonitor`` (the controller's live view for the API)
- ``ems.ports.stores``: one Protocol per store, and ``Storage`` (every store, one database)
- ``ems.ports.billing``: the billing stores and ``PaymentProvider``
- ``ems.ports.web``: ``DriverAuthStore`` (driver PINs and signed-in browser sessions, for ``ems.web``)

The values that cross these ports (``AuthorizationDecision``, ``SiteLoadReading``, ``SignalOutcome``,
``SignalAudit``, ``LiveSessionView`` ...) are in ``ems.domain``.
"""
