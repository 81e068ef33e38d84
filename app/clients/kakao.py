"""Kakao REST API: "send to me" memos, token refresh and token inspection.

Wire format (https://developers.kakao.com/docs/latest/en/message/rest-api):
- `POST {api}/v2/api/talk/memo/default/send`, `Authorization: Bearer <access token>`, form field
  `template_object` (JSON) → `{"result_code": 0}`; errors are `{"code": -401, "msg": "..."}`.
- `POST {auth}/oauth/token` form `grant_type=refresh_token&client_id&refresh_token[&client_secret]`
  → `{"access_token", "expires_in", "refresh_token"?}`; errors `{"error": "invalid_grant", ...}`.
- `GET {api}/v1/user/access_token_info`, `GET {api}/v2/user/me`.

Every failure becomes a `KakaoError` that says whether retrying can help.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from app.core.errors import AppError
from app.core.settings import AlertSettings

# Kakao codes worth retrying: internal error, service maintenance, timeout, under maintenance.
RETRYABLE_CODES = frozenset({-1, -7, -603, -9798})
# Codes that never succeed on retry: bad parameter, unsupported API, missing consent/scope.
PERMANENT_CODES = frozenset({-2, -3, -402})
TOKEN_EXPIRED_CODE = -401


class KakaoError(AppError):
    """Kakao refused or failed; `retryable`/`token_expired` drive the dispatcher."""

    status_code = 502
    code = "kakao_error"

    def __init__(
        self,
        message: str,
        *,
        kakao_code: int | str | None = None,
        http_status: int | None = None,
        retryable: bool = False,
        token_expired: bool = False,
    ) -> None:
        super().__init__(message)
        self.kakao_code = kakao_code
        self.http_status = http_status
        self.retryable = retryable
        self.token_expired = token_expired


@dataclass(frozen=True)
class KakaoTokens:
    """Tokens returned by a refresh; `refresh_token` is None when Kakao kept the old one."""

    access_token: str
    refresh_token: str | None
    expires_in: int | None


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _api_error(response: httpx.Response, what: str) -> KakaoError:
    data = _body(response)
    code = data.get("code")
    msg = str(data.get("msg") or response.reason_phrase or "no message")[:200]
    expired = code == TOKEN_EXPIRED_CODE or (response.status_code == 401 and code is None)
    retryable = (
        response.status_code >= 500 or code in RETRYABLE_CODES or response.status_code == 429
    )
    if code in PERMANENT_CODES:
        retryable = False
    return KakaoError(
        f"Kakao {what} failed: HTTP {response.status_code}, code {code}: {msg}",
        kakao_code=code,
        http_status=response.status_code,
        retryable=retryable and not expired,
        token_expired=expired,
    )


class KakaoClient:
    """One httpx client with explicit timeouts; started and closed with the app."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.kakao_timeout_secs),
                headers={"User-Agent": "sentinel"},
            )
        return self._http

    async def start(self) -> None:
        _ = self.http

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _request(self, method: str, url: str, what: str, **kw: Any) -> httpx.Response:
        try:
            return await self.http.request(method, url, **kw)
        except httpx.TimeoutException as exc:
            raise KakaoError(f"Kakao {what} timed out", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise KakaoError(
                f"Kakao {what} unreachable: {type(exc).__name__}", retryable=True
            ) from exc

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def send_memo(self, access_token: str, template: dict[str, Any]) -> None:
        """Send a "to me" memo; returns on `result_code == 0`, raises `KakaoError` otherwise."""
        response = await self._request(
            "POST",
            f"{self.settings.kakao_api_base_url.rstrip('/')}/v2/api/talk/memo/default/send",
            "memo send",
            headers=self._auth(access_token),
            data={"template_object": json.dumps(template, ensure_ascii=False)},
        )
        if response.status_code != 200:
            raise _api_error(response, "memo send")
        if _body(response).get("result_code") != 0:
            raise KakaoError(
                f"Kakao memo send returned an unexpected body: {response.text[:200]}",
                http_status=200,
                retryable=True,
            )

    async def refresh(self, refresh_token: str) -> KakaoTokens:
        """Exchange the refresh token for a new access token (and sometimes a new refresh token)."""
        form = {
            "grant_type": "refresh_token",
            "client_id": self.settings.kakao_rest_api_key,
            "refresh_token": refresh_token,
        }
        if self.settings.kakao_client_secret:
            form["client_secret"] = self.settings.kakao_client_secret
        response = await self._request(
            "POST",
            f"{self.settings.kakao_auth_base_url.rstrip('/')}/oauth/token",
            "token refresh",
            data=form,
        )
        data = _body(response)
        if response.status_code != 200 or "access_token" not in data:
            error = data.get("error") or data.get("code") or "unknown"
            desc = str(data.get("error_description") or data.get("msg") or "")[:200]
            desc = desc.replace(refresh_token, "***")  # never let a token reach logs or the API
            raise KakaoError(
                f"Kakao token refresh failed: HTTP {response.status_code}, {error}: {desc}",
                kakao_code=error,
                http_status=response.status_code,
                retryable=response.status_code >= 500,
            )
        return KakaoTokens(
            access_token=str(data["access_token"]),
            refresh_token=data.get("refresh_token") or None,
            expires_in=data.get("expires_in"),
        )

    async def access_token_info(self, access_token: str) -> dict[str, Any]:
        return await self._get_json("/v1/user/access_token_info", "token info", access_token)

    async def me(self, access_token: str) -> dict[str, Any]:
        return await self._get_json("/v2/user/me", "user info", access_token)

    async def _get_json(self, path: str, what: str, access_token: str) -> dict[str, Any]:
        url = f"{self.settings.kakao_api_base_url.rstrip('/')}{path}"
        response = await self._request("GET", url, what, headers=self._auth(access_token))
        if response.status_code != 200:
            raise _api_error(response, what)
        return _body(response)
