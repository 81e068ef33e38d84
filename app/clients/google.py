"""Google ID token verification (Sign in with Google) against Google's published keys.

PyJWT's `PyJWKClient` fetches `GOOGLE_JWKS_URL`, caches the key set and fetches it again when a
token names a key id it does not know (Google rotates keys). The fetch is blocking (urllib), so
it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import jwt
from jwt import PyJWKClient

from app.core.errors import NotFound, Unauthorized, Unavailable
from app.core.settings import SecuritySettings

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


@dataclass(frozen=True, slots=True)
class GoogleIdentity:
    """The verified claims Sentinel uses."""

    subject: str
    email: str
    name: str | None


class GoogleTokenVerifier:
    """Verifies RS256 ID tokens: signature, `aud` = GOOGLE_CLIENT_ID, `iss`, `exp`,
    `email_verified`."""

    def __init__(self, settings: SecuritySettings) -> None:
        self.settings = settings
        self._jwks = PyJWKClient(
            settings.google_jwks_url,
            cache_keys=True,
            lifespan=3600,
            timeout=int(max(1, settings.google_timeout_secs)),
            cooldown_duration=settings.google_jwks_refresh_cooldown_secs,
        )

    @property
    def configured(self) -> bool:
        return bool(self.settings.google_client_id)

    async def verify(self, id_token: str) -> GoogleIdentity:
        if not self.configured:
            # Not a fault of the server at this moment: the feature is off here (no 5xx).
            raise NotFound(
                "Google sign-in is not enabled on this server (GOOGLE_CLIENT_ID is empty); "
                "sign in with e-mail and password",
                code="google_not_configured",
            )
        return await asyncio.to_thread(self._verify, id_token)

    def _verify(self, id_token: str) -> GoogleIdentity:
        try:
            key = self._jwks.get_signing_key_from_jwt(id_token)
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable(
                "Google's signing keys could not be fetched; try again in a minute",
                code="google_keys_unavailable",
            ) from exc
        except (jwt.PyJWKClientError, jwt.PyJWTError) as exc:
            raise Unauthorized(
                "The Google ID token is signed with an unknown key or is malformed",
                code="invalid_google_token",
            ) from exc
        try:
            claims = jwt.decode(
                id_token,
                key.key,
                algorithms=["RS256"],
                audience=self.settings.google_client_id,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(
                "The Google ID token has expired; sign in with Google again",
                code="invalid_google_token",
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized(
                "The Google ID token was issued for another application (aud)",
                code="invalid_google_token",
            ) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(
                "The Google ID token is not valid (signature or claims)",
                code="invalid_google_token",
            ) from exc
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise Unauthorized(
                "The ID token was not issued by Google (iss)", code="invalid_google_token"
            )
        email = claims.get("email")
        if not isinstance(email, str) or not email or claims.get("email_verified") is not True:
            raise Unauthorized(
                "Google has not verified this account's e-mail address; verify it and retry",
                code="google_email_unverified",
            )
        name = claims.get("name")
        return GoogleIdentity(
            subject=str(claims["sub"]),
            email=email.lower(),
            name=name if isinstance(name, str) else None,
        )
