"""The node's prepared claims: NodePrepareResources / NodeUnprepareResources without gRPC.

:class:`ClaimManager` reads each claim through a :class:`ClaimSource` (the API server, or a
test's), prepares it (``prepare.py``), writes its CDI spec and keeps the checkpoint. Idempotent:
a claim already prepared is answered from the checkpoint (its spec rewritten if it went
missing); unpreparing a claim that is not prepared succeeds. Errors are per claim.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from qbackbone.dra import cdi, checkpoint
from qbackbone.dra.checkpoint import PreparedClaim
from qbackbone.dra.prepare import ClaimRef, PrepareError, Resolver, prepare

log = logging.getLogger(__name__)


class ClaimSource(Protocol):
    """What preparing needs from the cluster."""

    def read_claim(self, namespace: str, name: str) -> Mapping[str, Any]:
        """The ResourceClaim object (plain dict)."""
        ...  # pragma: no cover


class ClaimManager:
    """Prepared claims of one node, their CDI specs in ``cdi_dir`` and the checkpoint file."""

    def __init__(self, source: ClaimSource, resolver_factory: Callable[[], Resolver],
                 cdi_dir: Path, checkpoint_file: Path,
                 credentials_host_dir: Path | None = None) -> None:
        self.source, self.resolver_factory = source, resolver_factory
        self.cdi_dir, self.checkpoint_file = cdi_dir, checkpoint_file
        self.credentials_host_dir = credentials_host_dir
        self._lock = threading.Lock()
        try:
            self._claims = checkpoint.load(checkpoint_file)
        except (checkpoint.CheckpointError, OSError) as exc:
            aside = checkpoint_file.with_name(checkpoint_file.name + ".bad")
            log.error("checkpoint %s unusable (%s): kept as %s, starting empty",
                      checkpoint_file, exc, aside)
            with contextlib.suppress(OSError):
                checkpoint_file.replace(aside)
            self._claims = {}
        if self._claims:
            log.info("checkpoint: %d prepared claim(s)", len(self._claims))

    @property
    def prepared(self) -> dict[str, PreparedClaim]:
        with self._lock:
            return dict(self._claims)

    def prepare(self, refs: Sequence[ClaimRef]) -> dict[str, PreparedClaim | str]:
        """Prepare each claim; uid -> the prepared claim, or the error text."""
        out: dict[str, PreparedClaim | str] = {}
        resolver: Resolver | None = None
        with self._lock:
            for ref in refs:
                try:
                    if ref.uid in self._claims:
                        out[ref.uid] = self._again(self._claims[ref.uid], ref)
                        continue
                    if resolver is None:
                        resolver = self.resolver_factory()
                    out[ref.uid] = self._prepare(ref, resolver)
                except PrepareError as exc:
                    log.warning("claim %s/%s (%s): %s", ref.namespace, ref.name, ref.uid, exc)
                    out[ref.uid] = str(exc)
                except Exception as exc:  # an API or file error: this claim only
                    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    log.error("claim %s/%s (%s): %s", ref.namespace, ref.name, ref.uid, text)
                    out[ref.uid] = f"preparing failed: {text}"
        return out

    def _again(self, claim: PreparedClaim, ref: ClaimRef) -> PreparedClaim:
        if (claim.namespace, claim.name) != (ref.namespace, ref.name):
            raise PrepareError(f"claim uid {ref.uid} is prepared as {claim.namespace}/"
                               f"{claim.name}, not {ref.namespace}/{ref.name}")
        if claim.devices and cdi.read_spec(self.cdi_dir, claim.uid) is None:
            log.warning("claim %s: CDI spec missing, preparing it again", claim.uid)
            return self._prepare(ref, self.resolver_factory())
        return claim

    def _prepare(self, ref: ClaimRef, resolve: Resolver) -> PreparedClaim:
        obj = self.source.read_claim(ref.namespace, ref.name)
        claim, spec = prepare(ref, obj, resolve, self.credentials_host_dir)
        if spec is not None:
            cdi.write_spec(self.cdi_dir, ref.uid, spec)
        self._claims[ref.uid] = claim
        checkpoint.save(self.checkpoint_file, self._claims)
        log.info("prepared claim %s/%s (%s): %s", ref.namespace, ref.name, ref.uid,
                 ", ".join(f"{d.pool}/{d.device}" for d in claim.devices) or "no QPU")
        return claim

    def unprepare(self, refs: Sequence[ClaimRef]) -> dict[str, str]:
        """Unprepare each claim; uid -> "" or the error text."""
        out: dict[str, str] = {}
        with self._lock:
            for ref in refs:
                try:
                    removed = cdi.remove_spec(self.cdi_dir, ref.uid)
                    if self._claims.pop(ref.uid, None) is not None:
                        checkpoint.save(self.checkpoint_file, self._claims)
                        removed = True
                    if removed:
                        log.info("unprepared claim %s/%s (%s)", ref.namespace, ref.name,
                                 ref.uid)
                    out[ref.uid] = ""
                except (OSError, ValueError) as exc:
                    log.error("claim %s: unpreparing failed: %s", ref.uid, exc)
                    out[ref.uid] = f"unpreparing failed: {exc}"
        return out
