"""The environment lock: a coordination.k8s.io/v1 Lease per environment, held while ship
changes it, so two runs never reconcile the same namespace at once.

The holder renews the lease in a background thread. A second run waits (saying who holds the
lock) up to a bound, or fails at once with --no-wait. A lease whose holder stopped renewing
expires and is taken over; a holder on this same machine whose process is gone is taken over
at once. Takeover uses the lease's resourceVersion, so two waiters cannot both win.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from pipeline import names, process
from pipeline.errors import ApiError, LockError
from pipeline.kube.api import ClusterApi
from pipeline.progress import Progress, quiet


@dataclass(frozen=True)
class LockOptions:
    wait: float = 120.0  # seconds to wait for another holder; 0 fails at once (--no-wait)
    duration: int = 15  # lease duration: a dead holder's lock frees after this many seconds
    renew_every: float = 5.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def identity() -> str:
    run = os.environ.get("GITHUB_RUN_ID")
    where = f"github-run-{run}" if run else socket.gethostname()
    return f"ship/{where}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


def expired(lease: dict, now: dt.datetime) -> bool:
    spec = lease.get("spec", {})
    if not spec.get("holderIdentity"):
        return True
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    return renewed is None or now > renewed + dt.timedelta(
        seconds=spec.get("leaseDurationSeconds", 15)
    )


def holder_is_dead_here(holder: str) -> bool:
    """A holder on this machine whose process has ended (a crash or a kill -9)."""
    parts = holder.split("/")
    return len(parts) == 4 and parts[2].isdigit() and process.dead_here(parts[1], int(parts[2]))


class EnvironmentLock:
    """`with EnvironmentLock(cluster, "dev", namespace):` holds dev's lease for the block."""

    def __init__(
        self,
        cluster: ClusterApi,
        env: str,
        namespace: str,
        options: LockOptions = LockOptions(),
        progress: Progress = quiet,
    ):
        self.cluster, self.env, self.namespace, self.options = cluster, env, namespace, options
        self.name = names.LEASE_PREFIX + env
        self.holder = identity()
        self.progress = progress
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = ""  # why the lock was lost ("" while held): checked before every change
        self._renewed = time.monotonic()

    def _body(self, resource_version: str | None = None, *, acquire: bool = True) -> dict:
        now = _fmt(_now())
        spec = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.options.duration,
            "renewTime": now,
        }
        if acquire:
            spec["acquireTime"] = now
        meta = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {names.MANAGED_BY: names.MANAGER, names.LOCK_LABEL: self.env},
        }
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": spec,
        }

    def _try_acquire(self) -> tuple[bool, str]:
        lease = self.cluster.get("coordination.k8s.io/v1", "Lease", self.name, self.namespace)
        try:
            if lease is None:
                self.cluster.create(self._body(), retry_lost=True)  # a 409 is checked below
                return True, ""
            holder = lease.get("spec", {}).get("holderIdentity") or ""
            if expired(lease, _now()) or holder_is_dead_here(holder):
                body = self._body(lease["metadata"]["resourceVersion"])
                body["spec"]["leaseTransitions"] = (
                    lease.get("spec", {}).get("leaseTransitions", 0) + 1
                )
                self.cluster.replace(body)
                if holder:
                    self.progress(
                        f"took over {self.env}'s lock from {holder}, which stopped renewing it"
                    )
                return True, ""
            return False, holder
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            # Someone else created or renewed it first, or a retried request of ours won before
            # its answer was lost: the lease says which.
            now = self.cluster.get("coordination.k8s.io/v1", "Lease", self.name, self.namespace)
            holder = ((now or {}).get("spec") or {}).get("holderIdentity") or "another ship run"
            return holder == self.holder, "" if holder == self.holder else holder

    def acquire(self) -> None:
        deadline = time.monotonic() + self.options.wait
        told = None
        while True:
            ok, holder = self._try_acquire()
            if ok:
                break
            if self.options.wait <= 0:
                raise LockError(
                    f"{self.env} is locked by {holder} (Lease {self.namespace}/{self.name}); "
                    "try again later, or wait without --no-wait"
                )
            if time.monotonic() >= deadline:
                raise LockError(
                    f"{self.env} is still locked by {holder} after {self.options.wait:.0f}s "
                    f"(Lease {self.namespace}/{self.name})"
                )
            if holder != told:
                self.progress(f"waiting for {self.env}'s lock, held by {holder}")
                told = holder
            time.sleep(1.0)
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.env}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.options.renew_every):
            try:
                lease = self.cluster.get(
                    "coordination.k8s.io/v1", "Lease", self.name, self.namespace
                )
                holder = (lease or {}).get("spec", {}).get("holderIdentity")
                if lease is None or holder != self.holder:
                    self.lost = (
                        f"Lease {self.namespace}/{self.name} is now held by {holder or 'nobody'}"
                    )
                    return
                lease["spec"]["renewTime"] = _fmt(_now())
                self.cluster.replace(lease)
                self._renewed = time.monotonic()
            except Exception as exc:
                # a missed renewal is retried until the lease would have expired
                if time.monotonic() - self._renewed >= self.options.duration:
                    self.lost = (
                        f"Lease {self.namespace}/{self.name} not "
                        f"renewed for {self.options.duration}s ({exc})"
                    )
                    return

    def check(self) -> None:
        """Raise LockError when the lock was lost: another run may be changing the environment."""
        if self.lost:
            raise LockError(
                f"{self.env}: lost the environment's lock "
                f"({self.lost}); stopped before the next change: "
                "check `ship status`, then run the command again"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            lease = self.cluster.get("coordination.k8s.io/v1", "Lease", self.name, self.namespace)
            if lease and lease["spec"].get("holderIdentity") == self.holder:
                self.cluster.delete("coordination.k8s.io/v1", "Lease", self.name, self.namespace)
        except Exception:
            pass

    def __enter__(self) -> EnvironmentLock:
        # Re-entrant within a process: a canary holds ENV's lock across its steps, and each
        # step's sync takes it again.
        key = (self.namespace, self.name)
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key] += 1
                return self
        self.acquire()
        with _HELD_GUARD:
            _HELD[key] = 1
            _LOCKS[key] = self
        return self

    def __exit__(self, *exc) -> None:
        key = (self.namespace, self.name)
        with _HELD_GUARD:
            _HELD[key] -= 1
            if _HELD[key]:
                return
            del _HELD[key]
            _LOCKS.pop(key, None)
        self.release()


_HELD: dict[tuple[str, str], int] = {}  # locks this process holds, and how deeply
_LOCKS: dict[tuple[str, str], EnvironmentLock] = {}


def check_held(namespace: str) -> None:
    """Before changing anything in `namespace`: LockError when this process held its lock and
    lost it (the Lease was taken over, or could not be renewed before it expired)."""
    with _HELD_GUARD:
        locks = [lock for (ns, _), lock in _LOCKS.items() if ns == namespace]
    for lock in locks:
        lock.check()


_HELD_GUARD = threading.Lock()
