"""The back-office token: made once by ``loanserver admin make-admin-token FILE``.

The file holds only the token's SHA-256 (hex), so reading it gives no access; the token
itself is shown once to the operator; ``serve --admin-token-file`` reads the hash.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from loanserver.keys import token_hash
from loanserver.services import InvalidInput, Refused


def make_admin_token(path: str | Path, *, force: bool = False) -> str:
    """Write the SHA-256 hex of a new random token to ``path`` (mode 0600); return the token.

    An existing file is refused unless ``force`` (replacing it locks out whoever uses the
    old token). The file is written next to its final name and renamed, so a crash never
    leaves a half-written hash that would lock everybody out.
    """
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"{target} is a directory, not a file")
    if not target.parent.is_dir():
        raise InvalidInput(f"directory {target.parent} does not exist")
    if target.exists() and not force:
        raise Refused(f"{target} exists; pass --force to replace the admin token")
    token = secrets.token_urlsafe(32)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (token_hash(token) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {target}: {exc.strerror}") from None
    return token
