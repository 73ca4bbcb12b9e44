"""Application services: the use cases the CLI, the API and the event path share.

Built once by the composition root (``ems.app``) over the ports (``ems.ports``), the pure rules
(``ems.billing``, ``ems.grid.capacity``) and the bus; they import no adapter and no ``Settings``.
"""
