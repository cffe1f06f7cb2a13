"""Shared helpers for the eID tests: the specimen folder, and a private pcscd with vpcd.

``start_pcscd()`` runs Debian's ``pcscd --foreground`` as a child process (its own PID)
with a private reader configuration: only vsmartcard's vpcd, on free TCP ports, so it
never clashes with a system pcscd or with another test session on the same machine.

pcsc-lite 1.9.9's daemon ignores ``PCSCLITE_CSOCK_NAME`` (it always binds
``/run/pcscd/pcscd.comm``); the client library honours it. So the daemon runs in its own
mount namespace (``unshare``) where a temporary directory is bind-mounted over
``/run/pcscd``, and this process points ``PCSCLITE_CSOCK_NAME`` at the socket in that
directory. libpcsclite reads the variable once, at the first PC/SC call of the process:
``claim_socket_path()`` must run before any pyscard call (the integration conftest does
it at import). Without ``unshare`` rights the daemon falls back to the default socket,
and the tests skip when a system pcscd already holds it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECIMEN_DIR = REPO_ROOT.parent / "shared" / "testdata" / "eid"

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
DEFAULT_SOCKET = Path("/run/pcscd/pcscd.comm")
READER_NAME = "Virtual PCD 00 00"  # vpcd's first slot: "<FRIENDLYNAME> 00 00"
READER_WAIT_S = 10.0
STOP_WAIT_S = 5.0

_TMP_PREFIX = "digibank-pcscd-"
_claimed: Path | None = None


class PcscdUnavailable(RuntimeError):
    """A private pcscd cannot run on this machine (a reason to skip, not a failure)."""


def claim_socket_path() -> Path:
    """Point this process's PC/SC client at a private pcscd socket path (idempotent).

    Must run before the first pyscard call in the process; returns the socket path.
    """
    global _claimed
    if _claimed is None:
        existing = os.environ.get("PCSCLITE_CSOCK_NAME")
        if existing:
            _claimed = Path(existing)
        else:
            # Named, not made: start_pcscd() creates it, Pcscd.stop() removes it.
            unique = f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            _claimed = Path(tempfile.gettempdir()) / unique / "pcscd.comm"
            os.environ["PCSCLITE_CSOCK_NAME"] = str(_claimed)
    return _claimed


def missing_tools() -> str | None:
    """Why a private pcscd with vpcd cannot run here, or None when it can."""
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        return "pcscd is not installed (apt install pcscd; `make test` does it)"
    if not VPCD_DRIVER.exists():
        return f"vsmartcard-vpcd is not installed ({VPCD_DRIVER} missing)"
    try:
        import smartcard.scard  # noqa: F401
    except ImportError as exc:
        return f"pyscard is not importable: {exc}"
    return None


def _pcscd() -> str:
    return shutil.which("pcscd") or "/usr/sbin/pcscd"


def _free_port_pair() -> int:
    """A TCP port p with p and p+1 free (vpcd opens two slots on consecutive ports)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("0.0.0.0", port))
                b.bind(("0.0.0.0", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free TCP port pair for vpcd")


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


_UNSHARE_CHOICES = (
    ("unshare", "--mount", "--propagation", "private"),  # root
    # Not root: a user namespace makes us root of a private mount namespace (when the
    # kernel allows unprivileged user namespaces).
    ("unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"),
)
# In the namespace: our directory over /run/pcscd (a tmpfs over /run first when that
# directory does not exist and cannot be made), then pcscd in place of the shell.
_NAMESPACE_SCRIPT = (
    "{ mkdir -p /run/pcscd 2>/dev/null || { mount -t tmpfs tmpfs /run && mkdir /run/pcscd; }; }"
    ' && mount --bind "$0" /run/pcscd && exec "$@"'
)


def _unshare_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` command that gives pcscd its own mount namespace here, or None."""
    if shutil.which("unshare") is None:
        return None
    for prefix in _UNSHARE_CHOICES:
        probe = subprocess.run(
            [*prefix, "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
            capture_output=True,
            timeout=5,
            check=False,
        )
        if probe.returncode == 0:
            return prefix
    return None


def list_readers() -> tuple[int, list[str]]:
    """(hresult, reader names) from a fresh PC/SC context: 0 and the names when all is well."""
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return hresult, []
    try:
        hresult, names = scard.SCardListReaders(context, [])
        return hresult, list(names or [])
    finally:
        scard.SCardReleaseContext(context)


@dataclass
class Pcscd:
    """A private pcscd: its process, the vpcd port and the virtual reader name.

    ``halt()`` stops the daemon and ``resume()`` starts it again on the same socket and
    vpcd port (what a "pcscd restarted" test needs); ``stop()`` ends it for good.
    """

    command: list[str]
    port: int
    socket_path: Path
    workdir: Path
    with_vpcd: bool = True
    own_client: bool = True  # this process's pyscard talks to it (socket claimed)
    reader: str = READER_NAME
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def log_tail(self, lines: int = 30) -> str:
        """The end of pcscd's own log (it logs no APDUs: pcscd runs without ``--apdu``)."""
        try:
            text = (self.workdir / "pcscd.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def resume(self) -> None:
        """Start the daemon (again) and wait, bounded, until it serves its reader."""
        if self.alive():
            return
        with (self.workdir / "pcscd.log").open("ab") as log:
            # start_new_session: a Ctrl-C in the test terminal does not reach pcscd first.
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + READER_WAIT_S
        while True:
            if not self.alive():
                code = self.process.returncode
                raise RuntimeError(f"pcscd exited ({code}):\n{self.log_tail()}")
            if _socket_answers(self.socket_path):
                if not (self.with_vpcd and self.own_client):
                    return
                if self.reader in list_readers()[1]:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pcscd not ready after {READER_WAIT_S} s (reader {self.reader!r}, "
                    f"PCSCLITE_CSOCK_NAME={os.environ.get('PCSCLITE_CSOCK_NAME')}):\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def halt(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_WAIT_S``; ``resume()`` can start it again."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_WAIT_S)

    def stop(self) -> None:
        """Halt for good and remove its directories; safe to call twice."""
        self.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)
        socket_dir = self.socket_path.parent
        if socket_dir != DEFAULT_SOCKET.parent and socket_dir.name.startswith(_TMP_PREFIX):
            # Our temporary socket directory (start_pcscd makes it again if needed).
            shutil.rmtree(socket_dir, ignore_errors=True)


def start_pcscd(socket_path: Path | None = None, *, with_vpcd: bool = True) -> Pcscd:
    """Start a private pcscd (with vpcd) and wait, bounded, until it serves its reader.

    ``socket_path`` defaults to ``claim_socket_path()`` (what this process's pyscard
    uses). Any other path serves clients in *other* processes only: this process waits
    for the socket to answer instead of listing readers. ``with_vpcd=False`` starts a
    pcscd without readers. Raises ``PcscdUnavailable`` when it cannot run here (skip),
    ``RuntimeError`` with pcscd's log when it does not come up (fail).
    """
    reason = missing_tools()
    if reason:
        raise PcscdUnavailable(reason)
    own_client = socket_path is None or socket_path == claim_socket_path()
    socket_path = socket_path or claim_socket_path()
    isolate = _unshare_prefix()
    if isolate is None:
        if socket_path != DEFAULT_SOCKET:
            raise PcscdUnavailable(
                "cannot isolate pcscd (no unshare rights) and PCSCLITE_CSOCK_NAME is not "
                "the default socket"
            )
        if _socket_answers(DEFAULT_SOCKET):
            raise PcscdUnavailable("a system pcscd is running and pcscd cannot be isolated here")
        run_dir = DEFAULT_SOCKET.parent
        if not os.access(run_dir if run_dir.exists() else run_dir.parent, os.W_OK):
            raise PcscdUnavailable(
                f"cannot run a private pcscd: {run_dir} is not writable and this kernel "
                "gives no (user) mount namespace to isolate it"
            )
    workdir = Path(tempfile.mkdtemp(prefix="digibank-pcscd-run-"))
    port = _free_port_pair() if with_vpcd else 0
    conf = workdir / "reader.conf.d"
    conf.mkdir()
    if with_vpcd:
        (conf / "vpcd").write_text(
            f'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:0x{port:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{port:04X}\n"
        )
    command = [_pcscd(), "--foreground", "--config", str(conf)]
    if isolate is not None:
        socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # In its own mount namespace the daemon's fixed /run/pcscd is our directory.
        command = [*isolate, "sh", "-c", _NAMESPACE_SCRIPT, str(socket_path.parent), *command]
    daemon = Pcscd(
        command=command,
        port=port,
        socket_path=socket_path,
        workdir=workdir,
        with_vpcd=with_vpcd,
        own_client=own_client,
    )
    try:
        daemon.resume()
    except BaseException:
        daemon.stop()
        raise
    return daemon


def card_state(reader: str) -> int:
    """The reader's current PC/SC event state bits (``SCARD_STATE_*``), 0 when unknown."""
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return 0
    try:
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE)]
        )
        if hresult != scard.SCARD_S_SUCCESS or not states:
            return 0
        return int(states[0][1])
    finally:
        scard.SCardReleaseContext(context)


def wait_card(reader: str, *, present: bool, timeout: float = 5.0) -> None:
    """Wait until pcscd sees a card in ``reader`` (or none); ``TimeoutError`` after ``timeout``.

    pcscd polls vpcd's slot a few times a second, so an inserted card shows after ~0.4 s.
    """
    from smartcard import scard

    deadline = time.monotonic() + timeout
    while True:
        state = card_state(reader)
        if bool(state & scard.SCARD_STATE_PRESENT) == present and state:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"card {'in' if present else 'out'}: reader state 0x{state:X}")
        time.sleep(0.05)


class VirtualSlot:
    """The virtual reader of a running pcscd and one ``CardEmulator`` to put cards in it."""

    def __init__(self, daemon: Pcscd) -> None:
        from hardware.eid.emulator import CardEmulator

        self.daemon = daemon
        self.reader = daemon.reader
        self.emulator = CardEmulator(port=daemon.port)

    def insert(self, card: object, *, wait: bool = True) -> object:
        """Put ``card`` (a ``BelpicCard`` or ``CardFiles``) in; wait until pcscd sees it.

        Returns the ``BelpicCard``. Use ``wait=False`` for a mute card (never present).
        """
        from hardware.eid.belpic import BelpicCard

        belpic = card if isinstance(card, BelpicCard) else BelpicCard(card)  # type: ignore[arg-type]
        self.emulator.insert(belpic)
        if wait:
            wait_card(self.reader, present=True)
        return belpic

    def remove(self, *, wait: bool = True) -> None:
        """Take the card out; wait until pcscd sees the reader empty."""
        self.emulator.remove()
        if wait:
            wait_card(self.reader, present=False)

    def close(self) -> None:
        """Take any card out (waiting, so the next test starts with an empty reader)."""
        self.emulator.stop()
        with contextlib.suppress(TimeoutError):
            wait_card(self.reader, present=False)


@contextlib.contextmanager
def running_pcscd() -> Iterator[Pcscd]:
    """``start_pcscd()`` as a context manager that always stops it."""
    daemon = start_pcscd()
    try:
        yield daemon
    finally:
        daemon.stop()
