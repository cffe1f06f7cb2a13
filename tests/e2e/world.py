"""Helpers of the end-to-end tests: the back office as the operator drives it, and what
the loan server's database holds (read with plain queries, as an operator would check)."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from loanserver import admin as admin_cli
from loanserver.models import Device, Reservation, Transaction

STORY = Path(__file__).resolve().parents[2] / "config" / "demo-server-story.toml"
TAGS = ("LAP-0042", "TAB-0007")


@dataclass
class Admin:
    """``loanserver admin ...`` on the server's database, with the shared pepper file.

    The CLI's own ``run`` in this process: the same code as the console script, without an
    interpreter start per command (the demo test runs the real subprocesses).
    """

    database: str
    pepper_file: Path

    def run(self, *args: str) -> str:
        """The command's standard output; AssertionError with its stderr when it fails."""
        out, err = io.StringIO(), io.StringIO()
        argv = ["admin", *args, "--database", self.database]
        if "--national-number" in args:
            argv += ["--pepper-file", str(self.pepper_file)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = admin_cli.run(argv)
        assert code == 0, f"loanserver {' '.join(args[:1])} exited {code}: {err.getvalue()}"
        return out.getvalue()

    def last(self, *args: str) -> str:
        """The last output line: the token, id or pickup code the command printed."""
        return self.run(*args).strip().splitlines()[-1].strip()

    def loans(self) -> list[dict[str, Any]]:
        """``admin loans --json``."""
        return list(json.loads(self.run("loans", "--json")))

    def report(self, month: str) -> dict[str, Any]:
        """``admin report --month M --format json``."""
        return dict(json.loads(self.run("report", "--month", month, "--format", "json")))


def server_view(engine: Engine) -> dict[str, tuple[str, str, str]]:
    """Asset tag -> (reservation id, reservation status, device status) on the server."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Device.asset_tag, Reservation.id, Reservation.status, Device.status).join(
                Reservation, Reservation.device_id == Device.id
            )
        ).all()
    return {tag: (str(rid), rstatus, dstatus) for tag, rid, rstatus, dstatus in rows}


def transaction_counts(engine: Engine) -> tuple[int, int]:
    """Rows in the server's transactions table, and distinct uuids among them."""
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(Transaction)).scalar_one()
        uuids = conn.execute(select(func.count(func.distinct(Transaction.uuid)))).scalar_one()
    return int(rows), int(uuids)


def server_rows(engine: Engine) -> list[tuple[str, int]]:
    """(uuid, seq) of every stored transaction, in the order the server stored them."""
    with engine.connect() as conn:
        return [
            (u, s)
            for u, s in conn.execute(
                select(Transaction.uuid, Transaction.seq).order_by(Transaction.id)
            )
        ]
