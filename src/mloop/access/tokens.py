"""Single sign-on: OpenID Connect bearer tokens (JWTs) verified against the issuer's keys, mapped to roles.

A token is accepted when its signature verifies with a key of the issuer's JWKS (a file, or its URL,
fetched and cached by PyJWT), its algorithm is one the settings allow (never ``none``), ``iss`` equals
the configured issuer, ``aud`` holds the configured audience, and ``exp``/``nbf`` hold within the leeway.
The user is the ``username_claim``; the groups in ``roles_claim`` (a dotted path such as
``realm_access.roles``) become grants through ``role_map``, and a group named like an mloop role maps to
that role. A token with no group that maps to a role is refused rather than let in with no grants: the
user would only meet refusals, each less clear than this one.

API keys (``mlk_...``) keep working beside tokens; services use them.

>>> verifier = TokenVerifier(settings.oidc)          # doctest: +SKIP
>>> verifier.actor(request_token)                     # doctest: +SKIP
Actor(name='alice', kind='user', grants=(Grant(role='data_scientist', scope='*'),), key_id=None)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt

from mloop.config.sections import OidcSettings
from mloop.errors import AuthenticationError, ConfigError, MloopError
from mloop.security.actor import Actor
from mloop.security.roles import PERMISSIONS, Grant

KEYS_CACHED_SECONDS = 300  # how long the issuer's key set is used before it is fetched again
REFETCH_COOLDOWN_SECONDS = (
    30  # an unknown kid refetches the set at most this often: no fetch per forged token
)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("mlk_")


class TokenVerifier:
    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        if settings.jwks.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(settings.jwks, cache_keys=True, lifespan=KEYS_CACHED_SECONDS,
                                           timeout=5, cooldown_duration=REFETCH_COOLDOWN_SECONDS)  # fmt: skip
        else:
            try:
                self._keys = jwt.PyJWKSet.from_json(Path(settings.jwks).read_text(encoding="utf-8"))
            except (OSError, jwt.PyJWTError, ValueError) as exc:
                raise ConfigError(
                    f"oidc.jwks: cannot read the issuer's keys from {settings.jwks} ({exc}); point it at "
                    "the JWKS file or the issuer's jwks_uri."
                ) from None
        self._grants = {
            group: [Grant.parse(g) for g in grants] for group, grants in settings.role_map.items()
        }

    def actor(self, token: str) -> Actor:
        """The user a token stands for, or :class:`AuthenticationError` saying what is wrong with it."""
        claims = self._claims(token)
        name = claims.get(self.settings.username_claim) or claims.get("sub")
        if not isinstance(name, str) or not name:
            raise AuthenticationError(
                f"The token has no {self.settings.username_claim!r} (or sub) claim naming the user."
            )
        groups = _path(claims, self.settings.roles_claim)
        groups = [groups] if isinstance(groups, str) else list(groups or [])
        grants: list[Grant] = []
        for group in groups:
            if group in self._grants:
                grants += self._grants[group]
            elif group in PERMISSIONS:
                grants.append(Grant(group))
        if not grants:
            raise AuthenticationError(
                f"The token of {name!r} carries the groups {sorted(map(str, groups))} in "
                f"{self.settings.roles_claim!r}, and none maps to an mloop role; map one in oidc.role_map."
            )
        return Actor(name, "user", tuple(dict.fromkeys(grants)))

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            key = self._signing_key(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.settings.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The token has expired; sign in again for a fresh one.") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError(
                f"The token is not for this service: its aud does not hold {self.settings.audience!r}."
            ) from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError(
                f"The token was not issued by {self.settings.issuer!r}, the issuer this project trusts."
            ) from None
        except jwt.InvalidAlgorithmError:
            raise AuthenticationError(
                f"The token's signature algorithm is not one of {', '.join(self.settings.algorithms)}."
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"The token was refused: {exc}.") from None
        return claims

    def _signing_key(self, token: str) -> Any:
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError as exc:
                raise MloopError(f"Cannot fetch the issuer's keys from {self.settings.jwks}: {exc}") from None
        assert self._keys is not None
        kid = jwt.get_unverified_header(token).get("kid")
        keys = self._keys.keys
        if kid is None and len(keys) == 1:
            return keys[0].key
        for candidate in keys:
            if candidate.key_id == kid:
                return candidate.key
        raise AuthenticationError(
            f"The token is signed with key {kid!r}, which the issuer's JWKS does not hold."
        )


def _path(claims: dict[str, Any], dotted: str) -> Any:
    value: Any = claims
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
