"""Charge-point, EV and grid-operator simulators: the other side of every protocol ems speaks.

Independent of the server's code (``lint-imports`` forbids ``ems.ocpp`` here): messages are the
``ocpp`` library's typed messages. One station is split, without import cycles, into:

- ``state``: EVSEs, transactions, intents, counters (plain data);
- ``messages16`` / ``messages201``: what a station sends, per OCPP version; ``wire``: time format;
- ``link``: the WebSocket and the library's ChargePoint (open, call, close);
- ``handlers``: what the station answers to the CSMS's commands (types the station by a Protocol);
- ``station``: ``SimStation``, the station's actions (boot, authorize, start, meter, stop, offline queue);
- ``behaviour``: ``run_station``, the station acting on its own (reconnect, charge, obey);
- ``profiles``: installed charging profiles and the limit they impose (pure);
- ``fleet``, ``ev``, ``grid_operator``, ``demo``, ``demo_billing``: what ``ems simulate`` and ``ems demo`` run.
"""
