"""The operator's console: server-rendered pages at ``/console`` (an adapter, built by ``ems.app``)."""
