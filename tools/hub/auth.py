"""Sign-in for a room: a roster of names, one room password for participants, the teacher's own password.

The passwords come from the environment of the hub process (serve.py puts them there: from the teacher's
environment or a prompt), are read once when the hub loads its configuration and removed from the
environment, so neither the proxy, the idle culler nor any participant's server inherits them. Only a keyed
hash stays in memory; an attempt is hashed with the same random key and compared with hmac.compare_digest,
so the comparison takes the same time wherever the two differ and whatever their lengths.

An unknown name, a wrong password, or the room password given for the teacher's name are all refused the
same way (JupyterHub's one "Invalid username or password"), after the same delay: a sign-in page tells
nobody which names exist.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets

from jupyterhub.auth import Authenticator
from traitlets import Unicode

ROOM_PASSWORD = "SELFEXTEND_HUB_PASSWORD"  # environment variables serve.py reads (or prompts for)
ADMIN_PASSWORD = "SELFEXTEND_HUB_ADMIN_PASSWORD"
REFUSED_DELAY = 1.0  # seconds before answering a refused sign-in (slows guessing; same for every refusal)


class Secret:
    """A password kept only as HMAC-SHA256 under a random key made at start-up."""

    def __init__(self, password: str, key: bytes):
        self._key = key
        self._digest = self.digest(password)

    def digest(self, password: str) -> bytes:
        """The keyed hash of a password."""
        return hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()

    def matches(self, attempt: str) -> bool:
        """Whether ATTEMPT is the password, compared in constant time."""
        return hmac.compare_digest(self.digest(attempt), self._digest)


def take_secret(variable: str, key: bytes) -> Secret:
    """Read a password from the environment, remove it from there, keep its keyed hash."""
    password = os.environ.pop(variable, "")
    if not password:
        raise RuntimeError(f"{variable} is not set: start the hub with tools/hub/serve.py")
    return Secret(password, key)


class RoomAuthenticator(Authenticator):
    """Names from the roster with the room password; the admin name with the teacher's password."""

    admin_name = Unicode("teacher", help="The teacher's sign-in name (the hub's admin).").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        key = secrets.token_bytes(32)
        self._room = take_secret(ROOM_PASSWORD, key)
        self._admin = take_secret(ADMIN_PASSWORD, key)

    async def authenticate(self, handler, data):
        """The normalized name when the name and password fit, else None (one answer for every refusal)."""
        name = self.normalize_username(str(data.get("username", "")).strip())
        attempt = str(data.get("password", ""))
        secret = self._admin if name == self.admin_name else self._room
        password_ok = secret.matches(attempt)  # computed for unknown names too: no timing difference
        if password_ok and (name == self.admin_name or name in self.allowed_users):
            return name
        self.log.warning("Refused sign-in (%s)", "unknown name" if name not in self.allowed_users
                         and name != self.admin_name else "wrong password")
        await asyncio.sleep(REFUSED_DELAY)
        return None
