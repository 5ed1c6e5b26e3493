"""Who is looking at the dashboard: a login with an API key kept in a sealed cookie, and the CSRF check.

A browser cannot send ``Authorization: Bearer`` on its own, so ``POST /ui/login`` takes the key once and
answers with the cookie ``mloop_session``: the key sealed with AES-GCM under the dashboard's secret
(HttpOnly, ``SameSite=Strict``, ``Secure`` over TLS, 12 hours). Each request unseals it and resolves the
key exactly as the API does, so a revoked key or a removed role ends the session at the next click. The
cookie holds no server state, so any worker or replica with the same secret reads it: the secret is
``ui.session_secret`` in the settings, else a random one kept in ``.mloop/ui.secret`` (made once, mode
0600), which every worker of one server shares.

Every form carries a CSRF token equal to the ``mloop_csrf`` cookie (double submit; the cookie is
``SameSite=Strict``, so another site can neither send it nor read it), checked before any change: a
forged POST gets 403, in ``local_admin`` mode too, where there is no login.

>>> sessions = Sessions(project)                        # doctest: +SKIP
>>> viewer = sessions.viewer(request)                   # the project as the logged-in user, or LoginNeeded
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

from mloop.errors import AuthenticationError, PermissionDenied
from mloop.project import Project
from mloop.ui.forms import form

SESSION_COOKIE = "mloop_session"
CSRF_COOKIE = "mloop_csrf"
SESSION_SECONDS = 12 * 3600


class LoginNeeded(Exception):
    """No valid session: the dashboard answers with the login page (or 401 to htmx requests)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Sessions:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.local = project.settings.local_admin
        self._aead = AESGCM(_secret(project))

    # ---- the session cookie -----------------------------------------------------------------------------

    def viewer(self, request: Request) -> Project:
        """The project as the user of this browser: the key in its cookie, resolved now; in ``local_admin``
        mode without a cookie, the local admin. :class:`LoginNeeded` otherwise."""
        sealed = request.cookies.get(SESSION_COOKIE)
        if not sealed:
            if self.local:
                return self.project
            raise LoginNeeded()
        key = self._open(sealed)
        if key is None:
            raise LoginNeeded("Your session has expired or is not valid: log in again.")
        try:
            return self.project.as_actor(self.project.keys.authenticate(key))
        except AuthenticationError as exc:
            raise LoginNeeded(str(exc)) from None

    def login(self, response: Response, key: str, *, secure: bool) -> Project:
        """Check ``key`` and set the session cookie on ``response``; :class:`AuthenticationError` names
        what is wrong with the key."""
        key = key.strip()
        if not key:
            raise AuthenticationError("Paste an API key (mlk_...) from `mloop keys issue`.")
        viewer = self.project.as_actor(self.project.keys.authenticate(key))
        response.set_cookie(SESSION_COOKIE, self._seal(key), max_age=SESSION_SECONDS, httponly=True,
                            samesite="strict", secure=secure, path="/ui")  # fmt: skip
        return viewer

    @staticmethod
    def logout(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/ui")

    def _seal(self, key: str) -> str:
        nonce = os.urandom(12)
        expires = int(time.time()) + SESSION_SECONDS
        blob = self._aead.encrypt(nonce, key.encode(), str(expires).encode())
        return base64.urlsafe_b64encode(expires.to_bytes(8, "big") + nonce + blob).decode()

    def _open(self, sealed: str) -> str | None:
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            expires = int.from_bytes(raw[:8], "big")
            if expires < time.time():
                return None
            return self._aead.decrypt(raw[8:20], raw[20:], str(expires).encode()).decode()
        except (ValueError, InvalidTag, UnicodeDecodeError):
            return None

    # ---- CSRF -------------------------------------------------------------------------------------------

    @staticmethod
    def csrf_token(request: Request) -> str:
        """This browser's token (from its cookie), or a new one that :meth:`keep_csrf` sets."""
        token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
        if not token:
            token = request.state.new_csrf = secrets.token_urlsafe(24)
        return token

    @staticmethod
    def keep_csrf(request: Request, response: Response) -> None:
        new = getattr(request.state, "new_csrf", None)
        if new:
            response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/ui",
                                secure=request.url.scheme == "https")  # fmt: skip

    async def posted(self, request: Request) -> dict[str, str]:
        """The form of a POST, once its CSRF token matches the browser's (:class:`PermissionDenied`
        otherwise): every action reads its form through here, so none can skip the check."""
        fields = await form(request)
        self.check_csrf(request, fields.get("csrf"))
        return fields

    @staticmethod
    def check_csrf(request: Request, submitted: str | None) -> None:
        """:class:`PermissionDenied` unless the form's token equals the browser's cookie."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
            raise PermissionDenied(
                "This form is stale or did not come from the dashboard: reload the page and retry."
            )


def _secret(project: Project) -> bytes:
    configured = project.settings.ui.session_secret
    if configured is not None:
        return _key_from(configured.get_secret_value().encode())
    path = Path(project.root) / ".mloop" / "ui.secret"
    try:
        return _key_from(path.read_bytes())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f"ui.secret.{os.getpid()}.tmp")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(32))
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(fresh, path)  # the first worker to get here wins; the others read its secret
    except FileExistsError:
        pass
    finally:
        fresh.unlink(missing_ok=True)
    return _key_from(path.read_bytes())


def _key_from(material: bytes) -> bytes:
    """A 256-bit AES key from any secret: SHA-256 under a fixed label, so a passphrase works too."""
    return hmac.new(b"mloop-ui-session", material, "sha256").digest()
