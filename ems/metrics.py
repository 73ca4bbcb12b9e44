"""Prometheus metrics, read from the components' own counters at scrape time.

No global metric objects: each component keeps plain numbers (``applied``, ``replans``,
``traffic``, ...) and ``SystemCollector.collect`` turns them into metric families when
``/metrics`` is scraped. The API adds its own (``ApiCollector``: HTTP requests, API
authentication failures). The parts are read through ``getattr``, so a component that
does not (yet) keep a number simply has no such metric, and this module imports no adapter.

Metrics (all prefixed ``ems_``):

=========================================  =======  ===================================================
name                                       type     labels / meaning
=========================================  =======  ===================================================
component_up                               gauge    component: 1 running, 0 failed or restarting
component_failures_total                   counter  component
component_restarts_total                   counter  component
ocpp_messages_received_total               counter  version, action: CALLs from stations
ocpp_messages_sent_total                   counter  version, action: CALLs to stations
ocpp_call_errors_sent_total                counter  version, code: CALLERRORs we answered
ocpp_call_errors_received_total            counter  version, code: CALLERRORs stations answered
ocpp_handshakes_refused_total              counter  status: refused WebSocket upgrades (401, 404, 429, ...)
ocpp_stations_connected                    gauge
ocpp_journal_lag                           gauge    answered messages not yet in storage
ocpp_applier_records_total                 counter
ocpp_applier_batches_total                 counter
ocpp_applier_batch_seconds_total           counter  (rate / batches rate = mean batch time)
ocpp_applier_last_batch_seconds            gauge
ocpp_applier_storage_retries_total         counter
ocpp_quarantined_total                     counter  messages quarantined (when the applier keeps it)
controller_replans_total                   counter
controller_replan_failures_total           counter
controller_replan_seconds_total            counter
controller_plan_solve_seconds              gauge    site: last plan's solve time
controller_plan_age_seconds                gauge    site
controller_plan_status                     gauge    site, status: 1 for the last plan's status
controller_profiles_sent_total             counter
controller_profiles_accepted_total         counter
controller_profiles_refused_total          counter
grid_mqtt_connected                        gauge
grid_mqtt_connections_total                counter
grid_mqtt_messages_received_total          counter
grid_signals_total                         counter  outcome: accepted, rejected, duplicate
bus_events_published_total                 counter
bus_events_dropped_total                   counter  subscriber
bus_queue_depth                            gauge    subscriber
auth_failures_total                        counter  door: api, ocpp
auth_refused_total                         counter  door: refused unchecked while locked out (429)
http_requests_total                        counter  method, route (template), status
http_request_seconds_total                 counter  method, route
http_requests_too_large_total              counter  (413)
asyncio_tasks                              gauge    tasks alive in the event loop (a steady climb is a leak)
gc_objects_tracked                         gauge    objects the garbage collector tracks (frozen ones excluded)
python_allocated_blocks                    gauge    memory blocks Python's allocator holds (strings and numbers too)
=========================================  =======  ===================================================

And the standard ``process_*`` metrics of the Prometheus client (Linux: resident and virtual
memory, open file descriptors and their limit, CPU seconds, start time), unprefixed as every
Prometheus exporter names them.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from ems.clock import Clock

PREFIX = "ems_"


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=list(labels))


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))


def _number(obj: object, name: str) -> float | None:
    value = getattr(obj, name, None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _counted(
    name: str, doc: str, labels: tuple[str, ...], counts: Mapping[tuple[str, ...], int] | None
) -> CounterMetricFamily:
    family = _counter(name, doc, labels)
    for key, value in sorted((counts or {}).items()):
        family.add_metric(list(key), value)
    return family


class SystemCollector:
    """The non-API parts of one ems process; any part may be ``None`` (not running here)."""

    def __init__(
        self,
        clock: Clock,
        *,
        supervisor: object = None,
        ocpp: object = None,
        controller: object = None,
        capacity: object = None,
        mqtt: object = None,
        bus: object = None,
    ) -> None:
        self._clock = clock
        self._supervisor = supervisor
        self._ocpp = ocpp
        self._controller = controller
        self._capacity = capacity
        self._mqtt = mqtt
        self._bus = bus

    def collect(self) -> Iterator[Metric]:
        yield from self._components()
        yield from self._ocpp_metrics()
        yield from self._controller_metrics()
        yield from self._grid()
        yield from self._bus_metrics()

    def _components(self) -> Iterator[Metric]:
        health = getattr(self._supervisor, "health", None)
        if health is None:
            return
        up = _gauge("component_up", "1 while the supervised component runs", ["component"])
        failures = _counter("component_failures", "failures of the supervised component", ["component"])
        restarts = _counter("component_restarts", "restarts of the supervised component", ["component"])
        for c in health():
            up.add_metric([c.name], 1.0 if c.up else 0.0)
            failures.add_metric([c.name], c.failures)
            restarts.add_metric([c.name], c.restarts)
        yield from (up, failures, restarts)

    def _ocpp_metrics(self) -> Iterator[Metric]:
        runtime = self._ocpp
        if runtime is None or not getattr(runtime, "prepared", False):
            return
        service, server = getattr(runtime, "service", None), getattr(runtime, "server", None)
        traffic = getattr(service, "traffic", None)
        vl, va, vc = ("version", "action"), ("version", "action"), ("version", "code")
        yield _counted("ocpp_messages_received", "CALLs received from stations", vl, getattr(traffic, "calls_in", None))
        yield _counted("ocpp_messages_sent", "CALLs sent to stations", va, getattr(traffic, "calls_out", None))
        yield _counted("ocpp_call_errors_sent", "CALLERRORs answered", vc, getattr(traffic, "call_errors_out", None))
        yield _counted(
            "ocpp_call_errors_received", "CALLERRORs stations answered", vc, getattr(traffic, "call_errors_in", None)
        )
        refused = getattr(server, "refused", None) or {}
        yield _counted(
            "ocpp_handshakes_refused", "refused upgrades", ("status",), {(str(k),): v for k, v in refused.items()}
        )
        registry = getattr(runtime, "registry", None)
        if registry is not None:
            connected = _gauge("ocpp_stations_connected", "stations connected now")
            connected.add_metric([], len(registry))
            yield connected
        throttle = getattr(server, "throttle", None)
        if throttle is not None:
            yield from _auth("ocpp", throttle)
        journal, applier = getattr(runtime, "journal", None), getattr(runtime, "applier", None)
        if journal is not None and applier is not None:
            lag = _gauge("ocpp_journal_lag", "answered OCPP messages not yet in storage")
            lag.add_metric([], journal.backlog() + applier.in_flight())
            yield lag
        counts = getattr(applier, "stats", applier)  # the applier's counters (ApplierStats) or the applier itself
        for attr, name, doc, kind in (
            ("applied", "ocpp_applier_records", "journal records applied to storage", "counter"),
            ("batches", "ocpp_applier_batches", "batches applied", "counter"),
            ("batch_seconds_total", "ocpp_applier_batch_seconds", "time spent applying batches", "counter"),
            ("last_batch_s", "ocpp_applier_last_batch_seconds", "time the last batch took", "gauge"),
            ("retries", "ocpp_applier_storage_retries", "batches retried while storage failed", "counter"),
            ("quarantined", "ocpp_quarantined", "messages quarantined (could not be applied)", "counter"),
        ):
            value = _number(applier, attr) if attr == "applied" else _number(counts, attr)
            if value is not None:
                family: CounterMetricFamily | GaugeMetricFamily = (
                    _counter(name, doc) if kind == "counter" else _gauge(name, doc)
                )
                family.add_metric([], value)
                yield family

    def _controller_metrics(self) -> Iterator[Metric]:
        c = self._controller
        if c is None:
            return
        for attr, name, doc in (
            ("replans", "controller_replans", "re-plans done"),
            ("replan_failures", "controller_replan_failures", "re-plans that failed"),
            ("replan_seconds_total", "controller_replan_seconds", "time spent re-planning (solve and dispatch)"),
            ("profiles_sent", "controller_profiles_sent", "charging profiles sent"),
            ("profiles_accepted", "controller_profiles_accepted", "charging profiles stations accepted"),
            ("profiles_refused", "controller_profiles_refused", "profiles refused, unanswered or not delivered"),
        ):
            value = _number(c, attr)
            if value is not None:
                family = _counter(name, doc)
                family.add_metric([], value)
                yield family
        plans: Mapping[str, Any] = getattr(c, "plans", {}) or {}
        solve = _gauge("controller_plan_solve_seconds", "solve time of the site's last plan", ["site"])
        age = _gauge("controller_plan_age_seconds", "age of the site's last plan", ["site"])
        status = _gauge("controller_plan_status", "the status of the site's last plan (1)", ["site", "status"])
        now = self._clock.now()
        for site_id, record in sorted(plans.items()):
            age.add_metric([site_id], (now - record.planned_at).total_seconds())
            schedule = getattr(record, "schedule", None)
            if schedule is not None:
                solve.add_metric([site_id], float(schedule.solve_s))
                status.add_metric([site_id, schedule.status.value], 1.0)
        yield from (solve, age, status)

    def _grid(self) -> Iterator[Metric]:
        if self._capacity is not None:
            signals = _counter("grid_signals", "capacity signals received (MQTT and API)", ["outcome"])
            for outcome, attr in (("accepted", "accepted"), ("rejected", "rejected"), ("duplicate", "duplicates")):
                value = _number(self._capacity, attr)
                if value is not None:
                    signals.add_metric([outcome], value)
            yield signals
        m = self._mqtt
        if m is not None:
            connected = _gauge("grid_mqtt_connected", "1 while the MQTT session is up")
            is_set = getattr(getattr(m, "connected", None), "is_set", None)
            connected.add_metric([], 1.0 if is_set is not None and is_set() else 0.0)
            yield connected
            for attr, name, doc in (
                ("connections", "grid_mqtt_connections", "MQTT sessions established"),
                ("received", "grid_mqtt_messages_received", "MQTT messages received"),
            ):
                value = _number(m, attr)
                if value is not None:
                    family = _counter(name, doc)
                    family.add_metric([], value)
                    yield family

    def _bus_metrics(self) -> Iterator[Metric]:
        bus = self._bus
        if bus is None:
            return
        published = _counter("bus_events_published", "domain events published")
        published.add_metric([], _number(bus, "published") or 0.0)
        dropped = _counter("bus_events_dropped", "events a slow subscriber lost", ["subscriber"])
        depth = _gauge("bus_queue_depth", "events waiting for the subscriber", ["subscriber"])
        for s in bus.stats():  # type: ignore[attr-defined]
            dropped.add_metric([s.name], s.dropped)
            depth.add_metric([s.name], s.depth)
        yield from (published, dropped, depth)


def _auth(door: str, throttle: object) -> Iterator[Metric]:
    failures = _counter("auth_failures", "failed authentications", ["door"])
    failures.add_metric([door], _number(throttle, "failures") or 0.0)
    refused = _counter("auth_refused", "attempts refused unchecked while locked out", ["door"])
    refused.add_metric([door], _number(throttle, "refused") or 0.0)
    yield from (failures, refused)


class ApiCollector:
    """The API's own: HTTP requests by route template and status, API-key failures, oversized bodies."""

    def __init__(self, http: object, throttle: object) -> None:
        self._http = http
        self._throttle = throttle

    def collect(self) -> Iterator[Metric]:
        requests = _counter("http_requests", "HTTP requests answered", ["method", "route", "status"])
        seconds = _counter("http_request_seconds", "time spent answering", ["method", "route"])
        for (method, route, status), count in sorted(getattr(self._http, "requests", {}).items()):
            requests.add_metric([method, route, str(status)], count)
        for (method, route), total in sorted(getattr(self._http, "seconds", {}).items()):
            seconds.add_metric([method, route], total)
        yield from (requests, seconds)
        too_large = _counter("http_requests_too_large", "requests refused for their body size (413)")
        too_large.add_metric([], _number(self._http, "refused") or 0.0)
        yield too_large
        yield from _auth("api", self._throttle)


class RuntimeCollector:
    """The process itself: asyncio tasks alive, objects tracked by the garbage collector and blocks
    Python's allocator holds (read when scraped, from inside the event loop: the ``/metrics`` route
    runs there), and the Prometheus client's ``process_*`` metrics (memory, file descriptors, CPU).
    Together they show a leak as a climb over hours, before it shows as a crash."""

    def __init__(self) -> None:
        self._process = ProcessCollector(registry=None)

    def collect(self) -> Iterator[Metric]:
        try:
            tasks = asyncio.all_tasks()
        except RuntimeError:  # scraped outside a running loop (a test): no tasks to count
            pass
        else:
            alive = _gauge("asyncio_tasks", "tasks alive in the event loop")
            alive.add_metric([], float(len(tasks)))
            yield alive
        tracked = _gauge("gc_objects_tracked", "objects the garbage collector tracks (frozen ones excluded)")
        tracked.add_metric([], float(len(gc.get_objects())))
        yield tracked
        # Strings, numbers and containers of only those are not tracked by the collector; a leak of
        # them shows here (and in resident memory), not in the count above.
        blocks = _gauge("python_allocated_blocks", "memory blocks Python's allocator holds")
        blocks.add_metric([], float(sys.getallocatedblocks()))
        yield blocks
        yield from self._process.collect()


def registry_of(*collectors: Collector | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        if collector is not None:
            registry.register(collector)
    return registry
