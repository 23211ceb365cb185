"""The publisher loop: QPUNodes -> ResourceSlices and the DeviceClasses (the driver's, and one
per published QPU: dra/classes.py), against the API server.

Plain dicts through ``CustomObjectsApi`` (group ``resource.k8s.io``, version ``v1``). Each sync
lists the QPUNodes and this publisher's slices, computes the pools (``dra/attributes.py``,
``dra/slices.py``) and sends only the changes. Syncs run on every watch event of QPUNodes or of
the publisher's slices (so a slice deleted by hand comes back), and every ``resync`` seconds.
A QPUNode that cannot be published is skipped and logged once per reason; an API error on one
slice is logged and retried at the next sync. ``stop()`` (SIGTERM/SIGINT in the CLI) ends the
loop and the watches; the slices stay published unless ``cleanup`` is set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from qbackbone.dra.attributes import DRIVER, Device, Unpublishable, device_of
from qbackbone.dra.classes import ClassChanges, plan_classes
from qbackbone.dra.slices import MANAGED_SELECTOR, Changes, Pool, plan, pools_of

log = logging.getLogger(__name__)

QPU_GROUP, QPU_VERSION, QPUNODES = "qbackbone.io", "v1alpha1", "qpunodes"
DRA_GROUP, DRA_VERSION = "resource.k8s.io", "v1"
SLICES, CLASSES = "resourceslices", "deviceclasses"
SELECTOR = f'device.driver == "{DRIVER}"'
REQUEST_TIMEOUT = 30  # seconds per API call
WATCH_SECONDS = 60  # server-side timeout of one watch request (then it is renewed)
DEBOUNCE = 0.2  # seconds to wait for more events before a sync


def device_class() -> dict[str, Any]:
    """The DeviceClass ``qpu.qbackbone.io``: every device of the driver."""
    return {"apiVersion": f"{DRA_GROUP}/{DRA_VERSION}", "kind": "DeviceClass",
            "metadata": {"name": DRIVER, "labels": {"app.kubernetes.io/managed-by": "qbackbone"}},
            "spec": {"selectors": [{"cel": {"expression": SELECTOR}}]}}


@dataclass
class SyncResult:
    """One sync: devices published, QPUNodes skipped (name -> reason), the changes sent and
    the API errors met."""

    published: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    changes: Changes = field(default_factory=Changes)
    classes: ClassChanges = field(default_factory=ClassChanges)
    errors: list[str] = field(default_factory=list)


class Publisher:
    """Publishes the QPUNodes of the cluster ``api`` talks to as devices of ``qpu.qbackbone.io``."""

    def __init__(self, api: client.ApiClient | None, resync: float = 30.0,
                 manage_device_class: bool = True, cleanup: bool = False,
                 custom: Any = None) -> None:
        # ``custom``: a CustomObjectsApi stand-in (tests); default: one on ``api``.
        self.custom = custom if custom is not None else client.CustomObjectsApi(api)
        self.resync, self.manage_device_class, self.cleanup = resync, manage_device_class, cleanup
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._watches: list[watch.Watch] = []
        self._threads: list[threading.Thread] = []
        self._skipped: dict[str, str] = {}  # logged once per (QPUNode, reason)
        self.syncs = 0

    # ----- one sync -----

    def devices(self, qpunodes: Sequence[Mapping[str, Any]]) -> tuple[list[Device], dict[str, str]]:
        devices, skipped = [], {}
        for obj in qpunodes:
            name = str(((obj.get("metadata") or {}).get("name")) or "?")[:80]
            try:
                devices.append(device_of(obj))
            except Unpublishable as exc:
                skipped[name] = str(exc)
            except Exception as exc:  # a shape no rule foresaw: skip it, never crash
                skipped[name] = f"Unpublishable: {type(exc).__name__}: {exc}"
        return devices, skipped

    def _listed(self) -> tuple[list[Device], dict[str, Pool], dict[str, str]]:
        """The QPUNodes now: the devices they make that can be published, the pools of all
        their devices, and the QPUNodes skipped (name -> reason, a pool's refusals too)."""
        found = _dict(self.custom.list_cluster_custom_object(
            QPU_GROUP, QPU_VERSION, QPUNODES, _request_timeout=REQUEST_TIMEOUT))
        items = found.get("items")
        devices, skipped = self.devices(items if isinstance(items, list) else [])
        pools, refused = pools_of(devices)
        for device, reason in refused:
            skipped[device.qpunode] = reason
        return [d for d in devices if d.qpunode not in skipped], pools, skipped

    def published_devices(self) -> list[Device]:
        """The devices the Ready QPUNodes make now (what a sync would publish)."""
        return self._listed()[0]

    def sync(self) -> SyncResult:
        """List, compute and apply once; raises ApiException only when listing fails."""
        result = SyncResult()
        if self.manage_device_class:
            self._ensure_device_class(result)
        published, pools, result.skipped = self._listed()
        result.published = sorted(d.qpunode for d in published)
        existing = self._slices()
        result.changes = plan(pools, existing)
        self._apply(result)
        if self.manage_device_class:
            result.classes = plan_classes(published, self._qpu_classes())
            self._apply_classes(result)
        self._log(result)
        self.syncs += 1
        return result

    def _slices(self) -> list[Mapping[str, Any]]:
        found = _dict(self.custom.list_cluster_custom_object(
            DRA_GROUP, DRA_VERSION, SLICES, label_selector=MANAGED_SELECTOR,
            field_selector=f"spec.driver={DRIVER}", _request_timeout=REQUEST_TIMEOUT))
        items = found.get("items")
        return [o for o in items if isinstance(o, dict)] if isinstance(items, list) else []

    def _apply(self, result: SyncResult) -> None:
        changes = result.changes
        for body in changes.create:
            self._call(result, f"create a slice of pool {body['spec']['pool']['name']}",
                       partial(self.custom.create_cluster_custom_object, DRA_GROUP,
                               DRA_VERSION, SLICES, body, _request_timeout=REQUEST_TIMEOUT))
        for body in changes.update:
            name = body["metadata"]["name"]
            self._call(result, f"replace slice {name}",
                       partial(self.custom.replace_cluster_custom_object, DRA_GROUP,
                               DRA_VERSION, SLICES, name, body,
                               _request_timeout=REQUEST_TIMEOUT))
        for name in changes.delete:
            self._call(result, f"delete slice {name}", partial(self._delete_slice, name))

    def _qpu_classes(self) -> list[Mapping[str, Any]]:
        found = _dict(self.custom.list_cluster_custom_object(
            DRA_GROUP, DRA_VERSION, CLASSES, label_selector=MANAGED_SELECTOR,
            _request_timeout=REQUEST_TIMEOUT))
        items = found.get("items")
        return [o for o in items if isinstance(o, dict)] if isinstance(items, list) else []

    def _apply_classes(self, result: SyncResult) -> None:
        for name in result.classes.delete:
            self._call(result, f"delete DeviceClass {name}",
                       partial(self._delete_class, name))
        for body in result.classes.create:
            self._call(result, f"create DeviceClass {body['metadata']['name']}",
                       partial(self.custom.create_cluster_custom_object, DRA_GROUP,
                               DRA_VERSION, CLASSES, body, _request_timeout=REQUEST_TIMEOUT))

    def _delete_class(self, name: str) -> None:
        try:
            self.custom.delete_cluster_custom_object(DRA_GROUP, DRA_VERSION, CLASSES, name,
                                                     _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _delete_slice(self, name: str) -> None:
        try:
            self.custom.delete_cluster_custom_object(DRA_GROUP, DRA_VERSION, SLICES, name,
                                                     _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _call(self, result: SyncResult, what: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except ApiException as exc:
            message = f"{what}: {_api_message(exc)}"
            result.errors.append(message)
            log.error("could not %s (retried at the next sync)", message)
            if exc.status == 409:  # someone wrote the slice meanwhile: sync again soon
                self._dirty.set()

    def _ensure_device_class(self, result: SyncResult) -> None:
        wanted = device_class()
        try:
            current = _dict(self.custom.get_cluster_custom_object(
                DRA_GROUP, DRA_VERSION, CLASSES, DRIVER, _request_timeout=REQUEST_TIMEOUT))
        except ApiException as exc:
            if exc.status != 404:
                result.errors.append(f"read DeviceClass {DRIVER}: {_api_message(exc)}")
                log.error("could not read DeviceClass %s: %s", DRIVER, _api_message(exc))
                return
            self._call(result, f"create DeviceClass {DRIVER}",
                       partial(self.custom.create_cluster_custom_object, DRA_GROUP,
                               DRA_VERSION, CLASSES, wanted, _request_timeout=REQUEST_TIMEOUT))
            log.info("DeviceClass %s created", DRIVER)
            return
        if (current.get("spec") or {}).get("selectors") != wanted["spec"]["selectors"]:
            wanted["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get(
                "resourceVersion")
            spec = dict(current.get("spec") or {})
            spec["selectors"] = wanted["spec"]["selectors"]
            wanted["spec"] = spec
            self._call(result, f"replace DeviceClass {DRIVER}",
                       partial(self.custom.replace_cluster_custom_object, DRA_GROUP,
                               DRA_VERSION, CLASSES, DRIVER, wanted,
                               _request_timeout=REQUEST_TIMEOUT))
            log.info("DeviceClass %s selectors restored", DRIVER)

    def _log(self, result: SyncResult) -> None:
        for name, reason in sorted(result.skipped.items()):
            if self._skipped.get(name) != reason:
                level = logging.INFO if reason.startswith("NotReady") else logging.WARNING
                log.log(level, "QPUNode %s not published: %s", name, reason)
        for name in sorted(set(self._skipped) - set(result.skipped)):
            log.info("QPUNode %s published again", name)
        self._skipped = dict(result.skipped)
        c = result.changes
        if c:
            log.info("slices: %d created, %d replaced, %d deleted; devices: %s",
                     len(c.create), len(c.update), len(c.delete),
                     ", ".join(result.published) or "(none)")
        if result.classes:
            log.info("per-QPU DeviceClasses: created %s; deleted %s",
                     ", ".join(b["metadata"]["name"] for b in result.classes.create) or "none",
                     ", ".join(result.classes.delete) or "none")

    # ----- the loop -----

    def run(self) -> None:
        """Sync on every watch event and every ``resync`` seconds until ``stop()``."""
        self._start_watch(QPU_GROUP, QPU_VERSION, QPUNODES, None)
        self._start_watch(DRA_GROUP, DRA_VERSION, SLICES, MANAGED_SELECTOR)
        backoff = 1.0
        try:
            while not self._stop.is_set():
                self._dirty.clear()
                try:
                    self.sync()
                    backoff, wait, failed = 1.0, self.resync, False
                except ApiException as exc:
                    hint = (" (is resource.k8s.io/v1 served? Kubernetes 1.34+; are the CRDs "
                            "installed?)" if exc.status == 404 else "")
                    log.error("sync failed: %s%s (retrying in %.0f s)", _api_message(exc), hint,
                              backoff)
                    wait, backoff, failed = backoff, min(backoff * 2, self.resync), True
                except Exception as exc:  # the API unreachable, a timeout: retry
                    log.error("sync failed: %s: %s (retrying in %.0f s)",
                              type(exc).__name__, exc, backoff)
                    wait, backoff, failed = backoff, min(backoff * 2, self.resync), True
                if failed:  # back off, events or not
                    self._stop.wait(wait)
                elif self._dirty.wait(wait) and not self._stop.is_set():
                    self._stop.wait(DEBOUNCE)  # let a burst of events settle
        finally:
            self._end_watches()
            if self.cleanup:
                self.remove_slices()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()

    def remove_slices(self) -> None:
        """Delete every slice this publisher manages (``--cleanup-on-exit``)."""
        try:
            names = [str(o["metadata"]["name"]) for o in self._slices()]
            for name in names:
                self._delete_slice(name)
            log.info("deleted %d ResourceSlice(s) of %s", len(names), DRIVER)
        except Exception as exc:
            log.error("could not delete the slices: %s", exc)

    def _start_watch(self, group: str, version: str, plural: str,
                     label_selector: str | None) -> None:
        w = watch.Watch()
        self._watches.append(w)

        def loop() -> None:
            backoff = 1.0
            while not self._stop.is_set():
                kwargs: dict[str, Any] = {"timeout_seconds": WATCH_SECONDS,
                                          "_request_timeout": WATCH_SECONDS + 10}
                if label_selector:
                    kwargs["label_selector"] = label_selector
                try:
                    for _event in w.stream(self.custom.list_cluster_custom_object, group,
                                           version, plural, **kwargs):
                        self._dirty.set()
                        if self._stop.is_set():
                            break
                    backoff = 1.0
                except Exception as exc:  # the resync covers what a broken watch missed
                    if self._stop.is_set():
                        break
                    log.debug("watch of %s ended: %s", plural, exc)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)

        thread = threading.Thread(target=loop, name=f"watch-{plural}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _end_watches(self) -> None:
        for w in self._watches:
            w.stop()
        deadline = time.monotonic() + 2.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _api_message(exc: ApiException) -> str:
    """The API server's message (its Status body) rather than the client's dump."""
    import json

    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict) and body.get("message"):
            return f"{exc.status} {body.get('reason') or ''}: {body['message']}".strip()
    except ValueError:
        pass
    return f"{exc.status} {exc.reason}"
