"""Who holds a lease: the ``lease_owner`` a process writes on the feeds, pages and deliveries it
claims, and whether the process an owner names is known to be dead.

An owner reads ``host:pid:run/boot:pidns:start``: the host name, the process id and a random run
tag (unique per process and step), then, on Linux, the kernel's boot id
(``/proc/sys/kernel/random/boot_id``), the inode of the process's PID namespace
(``/proc/self/ns/pid``) and its start time (clock ticks after boot, ``/proc/<pid>/stat`` field 22).

``dead`` is True only when the owner's process provably no longer runs: it was written on this
host, kernel boot and PID namespace (so its pid means the same process here), and no process with
that pid started at that time exists now. Host names and pids alone would not do: replicas in
containers on one machine can share a host name, and each container numbers its own processes
from 1, so another replica's live pid may be absent from this one's ``/proc``. A namespace's inode
is unique among the namespaces alive on one boot (the kernel reuses it only once the namespace,
and every process in it, is gone), and a boot id is unique per boot, so a replica on another
machine or in another container is never judged dead; its leases expire as before. An owner
without the Linux part (another system, an older version) is never judged dead either.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from pathlib import Path
from typing import NamedTuple


class _Identity(NamedTuple):
    boot: str
    pidns: int
    pid: int
    start: int


def _start_time(pid: int) -> int | None:
    """Start time of the process ``pid`` in clock ticks after boot (``/proc/<pid>/stat`` field 22),
    or None when no such process runs here."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 onwards
    return int(fields[19])


@functools.cache
def _here() -> _Identity | None:
    """This process's boot id, PID namespace inode, pid and start time; None where ``/proc`` cannot
    tell them (not Linux, or a ``/proc`` of another PID namespace than this process's)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = os.stat("/proc/self/ns/pid").st_ino
        own_pid = int(Path("/proc/self/stat").read_text().split(maxsplit=1)[0])
    except (OSError, ValueError):
        return None
    start = _start_time(os.getpid())
    if own_pid != os.getpid() or start is None or not boot or ":" in boot or "/" in boot:
        return None  # /proc is mounted from another PID namespace: its pids are not ours
    return _Identity(boot, pidns, own_pid, start)


def lease_owner() -> str:
    """A new owner name for one step of this process (``host:pid:run/boot:pidns:start``, the part
    after ``/`` only on Linux)."""
    name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    here = _here()
    return name if here is None else f"{name}/{here.boot}:{here.pidns}:{here.start}"


def dead(owner: str) -> bool:
    """Whether the process that wrote the owner name ``owner`` (``lease_owner``) is known to be
    gone: written on this host, boot and PID namespace, and its pid now runs no process started at
    its start time. False whenever that cannot be told."""
    here = _here()
    name, _, identity = owner.partition("/")
    parts = identity.split(":")
    if here is None or len(parts) != 3 or name.count(":") != 2:
        return False
    host, pid_text, _run = name.split(":")
    try:
        boot, pidns, start, pid = parts[0], int(parts[1]), int(parts[2]), int(pid_text)
    except ValueError:
        return False
    if boot != here.boot or pidns != here.pidns or host != socket.gethostname():
        return False  # another machine or container (the host name too: a VM cloned while running keeps its boot id)
    return _start_time(pid) != start
