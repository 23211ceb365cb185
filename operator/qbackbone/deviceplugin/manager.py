"""The plugin manager: one :class:`~qbackbone.deviceplugin.plugin.QPUPlugin` per QPU, kept in
step with the resource manager and with the kubelet.

One watch thread does the level-based work, every ``poll_interval`` or when woken:

- refresh the resource manager (re-read the QPU list, re-check health) and reconcile: start
  and register plugins for new QPUs, stop those of QPUs that left, push health changes onto
  the ListAndWatch streams;
- watch the kubelet socket: when it is (re)created, the kubelet restarted and forgot every
  plugin (it also clears the directory), so restart every plugin's server and register again;
- restart a plugin whose own socket was deleted; retry failed registrations with backoff.

Polling the directory rather than inotify keeps the plugin free of native dependencies; the
kubelet itself takes seconds to restart, so a one-second poll costs nothing noticeable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import grpc

from qbackbone.deviceplugin.plugin import QPUPlugin
from qbackbone.deviceplugin.resources import ResourceManager

log = logging.getLogger(__name__)

DEFAULT_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
KUBELET_SOCKET = "kubelet.sock"
_MAX_BACKOFF = 30.0


class PluginManager:
    """Serves every QPU of ``resources`` from ``plugin_dir``; :meth:`start`, then :meth:`stop`."""

    def __init__(
        self,
        resources: ResourceManager,
        plugin_dir: str | os.PathLike[str] = DEFAULT_PLUGIN_DIR,
        *,
        kubelet_socket: str = KUBELET_SOCKET,
        poll_interval: float = 1.0,
        register_timeout: float = 5.0,
        credentials_host_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.resources = resources
        self.plugin_dir = Path(plugin_dir)
        self.kubelet_socket = self.plugin_dir / kubelet_socket
        self.poll_interval = poll_interval
        self.register_timeout = register_timeout
        self.credentials_host_dir = (None if credentials_host_dir is None
                                     else Path(credentials_host_dir))
        self._plugins: dict[str, QPUPlugin] = {}
        self._lock = threading.Lock()  # guards _plugins for readers outside the watch thread
        self._kubelet_id: tuple[int, int] | None = None
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- public ---------------------------------------------------------------------------

    @property
    def plugins(self) -> dict[str, QPUPlugin]:
        """The running plugins by QPU name (a copy)."""
        with self._lock:
            return dict(self._plugins)

    def start(self) -> None:
        """Serve every QPU, register with the kubelet if it is there, then watch."""
        if self._thread is not None:
            raise RuntimeError("the plugin manager is already running")
        self.plugin_dir.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self._kubelet_id = self._kubelet_identity()
        self.resources.refresh(force=True)
        self._reconcile()
        self._thread = threading.Thread(target=self._watch, name="qbdp-watch", daemon=True)
        self._thread.start()

    def reload(self) -> None:
        """Re-read the QPU list now (SIGHUP); safe to call from a signal handler."""
        self._reload.set()
        self._wake.set()

    def wake(self) -> None:
        """Run one watch iteration now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop watching and stop every plugin (their sockets are removed)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            plugins, self._plugins = list(self._plugins.values()), {}
        for plugin in plugins:
            plugin.stop()

    # --- the watch loop -------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._step()
            except Exception:  # keep serving; the next iteration retries
                log.exception("device-plugin watch iteration failed")

    def _step(self) -> None:
        force = self._reload.is_set()
        self._reload.clear()
        self.resources.refresh(force=force)
        kubelet_id = self._kubelet_identity()
        if kubelet_id != self._kubelet_id:
            self._kubelet_id = kubelet_id
            if kubelet_id is None:
                log.warning("kubelet socket %s is gone; waiting for it", self.kubelet_socket)
                for plugin in self.plugins.values():
                    plugin.registered = False
            else:
                log.info("kubelet socket %s (re)created: restarting and re-registering",
                         self.kubelet_socket)
                for name, plugin in self.plugins.items():
                    plugin.stop()
                    self._backoff.pop(name, None)
                    self._retry_at.pop(name, None)
        self._reconcile()

    def _kubelet_identity(self) -> tuple[int, int] | None:
        try:
            st = self.kubelet_socket.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_ctime_ns)

    def _reconcile(self) -> None:
        states = self.resources.states()
        with self._lock:
            gone = {n: p for n, p in self._plugins.items() if n not in states}
            for name in gone:
                del self._plugins[name]
        for name, plugin in gone.items():
            log.info("QPU %s left the list: withdrawing %s", name, plugin.resource_name)
            plugin.stop()
            self._retry_at.pop(name, None)
            self._backoff.pop(name, None)
        for name, state in states.items():
            existing = self.plugins.get(name)
            if existing is None:
                plugin = QPUPlugin(state, self.plugin_dir, self.credentials_host_dir)
                with self._lock:
                    self._plugins[name] = plugin
            else:
                plugin = existing
                if plugin.state.qpu != state.qpu:
                    # Same name, another backend or Secret: the kubelet need not know, new
                    # allocations see the new QPU.
                    log.info("QPU %s changed: now %s", name, state.qpu)
                plugin.update(state)
            if plugin.socket_replaced():
                log.warning("socket %s was removed: serving again", plugin.socket_path)
                plugin.stop()
            if not plugin.serving:
                try:
                    plugin.start()
                except Exception as exc:
                    log.error("cannot serve %s on %s: %s", plugin.resource_name,
                              plugin.socket_path, exc)
                    continue
            if not plugin.registered and self._kubelet_id is not None:
                self._register(name, plugin)

    def _register(self, name: str, plugin: QPUPlugin) -> None:
        now = time.monotonic()
        if now < self._retry_at.get(name, 0.0):
            return
        try:
            plugin.register(self.kubelet_socket, self.register_timeout)
        except grpc.RpcError as exc:
            delay = min(_MAX_BACKOFF, 2 * self._backoff.get(name, self.poll_interval / 2))
            self._backoff[name] = delay
            self._retry_at[name] = now + delay
            log.error("registering %s with the kubelet failed (%s); retrying in %.1f s",
                      plugin.resource_name, _describe(exc), delay)
        else:
            self._backoff.pop(name, None)
            self._retry_at.pop(name, None)


def _describe(exc: grpc.RpcError) -> str:
    if isinstance(exc, grpc.Call):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)
