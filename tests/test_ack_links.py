"""Acknowledge from the message (issue 28 item 7): every Kakao, Slack, webhook and e-mail
message of an unacknowledged incident carries a signed, single-incident, expiring link on
ALERT_LINK_URL's host; opening it (GET) shows a page and changes nothing, its button (POST)
acknowledges "via link" with the channel. Forged, expired, damaged and reused links change
nothing and say why; the link works in production without a bearer token.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.models.base import utcnow
from app.services.ack_links import AckLinks, AckLinkService, AckState, LinkProblem, LinkRefused
from tests.eventing import abnormal_episode, eventually
from tests.test_alert_channels import (  # noqa: F401  (fixtures)
    channel_settings,
    counts,
    hooks_server,
    kakao_server,
    servers,
    smtp_server,
    wait_alerts,
)
from tests.test_authz import PROD, SERVICE
from tests.test_incidents import dispatcher, incident, incidents, messages_of, settle

ORIGIN = "https://sentinel.example.com"  # the host of channel_settings' ALERT_LINK_URL
URL = re.compile(r"https://sentinel\.example\.com/ack/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
NOT_VALID = ("이 링크는 유효하지 않습니다", "This link is not valid")


def kakao_ack_url(memo: dict[str, Any]) -> str:
    console, ack = memo["buttons"]
    assert console["link"]["web_url"] == "https://sentinel.example.com/alerts"
    assert ack["link"]["web_url"] == ack["link"]["mobile_web_url"]
    return ack["link"]["web_url"]


def slack_ack_url(body: dict[str, Any]) -> str:
    [button] = body["blocks"][-1]["elements"]
    assert button["type"] == "button"
    return button["url"]


def path_of(url: str) -> str:
    assert url.startswith(ORIGIN + "/ack/"), url
    return url.removeprefix(ORIGIN)


def assert_page(r: httpx.Response, status: int, *phrases: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "form-action 'self'" in csp and "default-src 'none'" in csp
    assert "<script" not in r.text and "http" not in r.text.split("<body>")[1]
    token = str(r.request.url).rsplit("/", 1)[-1]
    assert token not in r.text  # never echoed
    for phrase in phrases:
        assert phrase in r.text, (phrase, r.text)


async def test_every_channel_carries_a_link_that_acknowledges_on_post_only(
    make_app,
    servers,  # noqa: F811
):
    kakao, hooks, smtp = servers
    async with make_app(alerts=channel_settings(servers)) as (_, client):
        await abnormal_episode(client, "cam-ack")
        await wait_alerts(client, "sent", 1)
        assert counts(servers) == {"kakao": 1, "slack": 1, "webhook": 1, "email": 1}
        [payload] = hooks.webhook
        incident_id = payload["incident_id"]
        assert [i["id"] for i in await incidents(client, source_id="cam-ack")] == [incident_id]
        links = {
            "kakao": kakao_ack_url(kakao.memos[0]),
            "slack": slack_ack_url(hooks.slack[0]),
            "webhook": payload["ack_url"],
            "email": URL.findall(smtp.messages[0].get_content())[0],
        }
        assert all(URL.fullmatch(u) for u in links.values()), links
        assert len(set(links.values())) == 4  # one link per channel's message
        assert links["slack"] in hooks.slack[0]["text"]  # the text's own line too

        # Opening the link (as a previewer would, several times) changes nothing.
        for _ in range(2):
            r = await client.get(path_of(links["slack"]))
            assert_page(r, 200, "cam-ack", '<form method="post">', "Acknowledge", "확인(응답)")
        detail = await incident(client, incident_id)
        assert detail["acked_at"] is None and all(a["acked_at"] is None for a in detail["alerts"])

        r = await client.post(path_of(links["slack"]))
        assert_page(r, 200, "확인되었습니다", "Acknowledged", "link (slack)")
        assert "<form" not in r.text
        detail = await incident(client, incident_id)
        assert detail["acked_via"] == "link" and detail["acked_channel"] == "slack"
        assert detail["acked_by"] == "link (slack)" and detail["acked_at"] is not None
        assert all(a["acked_at"] is not None for a in detail["alerts"])

        # Another channel's link: acknowledged already, by whom; nothing changes.
        r = await client.post(path_of(links["kakao"]), headers={"Accept-Language": "en"})
        assert_page(r, 200, "Already acknowledged", "link (slack)")
        assert r.text.index("Already acknowledged") < r.text.index("이미 확인된 사건입니다")
        # The same link twice: spent.
        r = await client.post(path_of(links["slack"]))
        assert_page(r, 409, "이미 사용된 링크입니다", "This link was already used")
        r = await client.get(path_of(links["slack"]))
        assert r.status_code == 409
        after = await incident(client, incident_id)
        assert (after["acked_at"], after["acked_channel"]) == (detail["acked_at"], "slack")


async def test_a_chain_of_two_steps_is_stopped_by_the_link_of_the_first_message(
    make_app,
    servers,  # noqa: F811
):
    kakao, hooks, smtp = servers
    settings = channel_settings(servers, channels="kakao,slack,email")
    chain = {
        "steps": [
            {"after_secs": 60, "channels": ["slack"]},
            {"after_secs": 180, "channels": ["email"]},
        ]
    }
    async with make_app(alerts=settings) as (app, client):
        r = await client.put(
            "/api/v1/alerts/routes",
            json={"rules": [{"source": "*", "channels": ["kakao"], "escalation": chain}]},
        )
        assert r.status_code == 200, r.text
        await abnormal_episode(client, "cam-chain-link")
        await settle(servers, {"kakao": 1, "slack": 0, "webhook": 0, "email": 0})
        [item] = await incidents(client, source_id="cam-chain-link")
        opened = datetime.fromisoformat(item["opened_at"])
        run = dispatcher(app).housekeep
        assert await run(opened + timedelta(seconds=61)) == 1  # step 1: slack
        await settle(servers, {"kakao": 1, "slack": 1, "webhook": 0, "email": 0})
        assert URL.fullmatch(slack_ack_url(hooks.slack[0]))  # the step carries a link too

        first = kakao_ack_url(kakao.memos[0])  # the first message's link
        r = await client.post(path_of(first))
        assert_page(r, 200, "확인되었습니다")

        assert await run(opened + timedelta(seconds=181)) == 0  # step 2 never written
        await settle(servers, {"kakao": 1, "slack": 1, "webhook": 0, "email": 0})
        wanted = {("kakao", "notify"): "sent", ("slack", "escalation"): "sent"}

        async def all_sent():
            found = await incident(client, item["id"])
            return found if messages_of(found) == wanted else None

        # A receiver has the message a moment before its `sent` commit: wait for the rows.
        detail = await eventually(all_sent, timeout=20, interval=0.1)
        assert detail["acked_via"] == "link" and detail["acked_channel"] == "kakao"
        assert detail["escalation_steps_done"] == 1
    assert len(smtp.messages) == 0


async def test_forged_expired_damaged_and_unknown_links_change_nothing(
    make_app,
    servers,  # noqa: F811
):
    _kakao, hooks, _smtp = servers
    settings = channel_settings(servers, channels="webhook", ack_link_ttl_secs=600)
    async with make_app(alerts=settings) as (app, client):
        await abnormal_episode(client, "cam-forged")
        await wait_alerts(client, "sent", 1)
        [payload] = hooks.webhook
        incident_id, link = payload["incident_id"], path_of(payload["ack_url"])
        links: AckLinks = app.state.container.ack_links()

        # Forged: one character of the signature changed.
        head, _, signature = link.partition(".")
        middle = len(signature) // 2
        flipped = "A" if signature[middle] != "A" else "B"
        forged = f"{head}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
        # ...or a link for this incident signed with another key.
        foreign = AckLinks(links.settings, links.security.model_copy(update={"jwt_secret": "x"}))
        other_key = path_of(foreign.url(uuid.UUID(incident_id), "webhook") or "")
        # Expired: made with the real key, ALERT_ACK_LINK_TTL_SECS (600 s) ago and a bit.
        past = utcnow() - timedelta(seconds=601)
        expired = path_of(links.url(uuid.UUID(incident_id), "webhook", now=past) or "")
        for method in ("GET", "POST"):
            for path in (forged, other_key):
                r = await client.request(method, path)
                assert_page(r, 403, *NOT_VALID)
            r = await client.request(method, expired)
            assert_page(r, 410, "만료된 링크입니다", "This link has expired", "console")
            r = await client.request(method, link[:-5])  # cut off by a mail client
            assert_page(r, 400, *NOT_VALID)
            r = await client.request(method, "/ack/" + "x" * 5000)
            assert_page(r, 400, *NOT_VALID)
            stranger = path_of(links.url(uuid.uuid4(), "webhook") or "")
            r = await client.request(method, stranger)
            assert_page(r, 404, "Incident not found")
        detail = await incident(client, incident_id)
        assert detail["acked_at"] is None and detail["acked_via"] is None

        # The genuine link still works after all that, once.
        r = await client.post(link)
        assert_page(r, 200, "Acknowledged")
        r = await client.post(link)
        assert_page(r, 409, "This link was already used")


async def test_a_refused_link_costs_no_database_work():
    from app.core.settings import AlertSettings, SecuritySettings

    links = AckLinks(AlertSettings(link_url="https://ops.example.com:8443/x"), SecuritySettings())
    url = links.url(uuid.uuid4(), "slack")
    assert url is not None and url.startswith("https://ops.example.com:8443/ack/")
    token = url.rsplit("/", 1)[-1]
    assert links.verify(token).channel == "slack"
    # A service without a database: a refused link is answered from the signature alone.
    service = AckLinkService(database=None, links=links)  # type: ignore[arg-type]
    bad = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    for attempt in (bad, "junk", token.replace(".", "")):
        assert (await service.acknowledge(attempt)).state in (AckState.forged, AckState.malformed)
    with pytest.raises(LinkRefused) as refused:
        links.verify(token, now=utcnow() + timedelta(days=2))
    assert refused.value.problem is LinkProblem.expired
    assert (
        AckLinks(AlertSettings(link_url="not a url"), SecuritySettings()).url(uuid.uuid4(), "slack")
        is None
    )


async def test_the_link_works_in_production_without_a_bearer_token(
    make_app,
    servers,  # noqa: F811
):
    _kakao, hooks, _smtp = servers
    security = {**PROD["security"], "data_encryption_key": "k" * 44}  # Kakao tokens are set
    alerts = channel_settings(servers, channels="webhook")
    async with make_app(**{**PROD, "security": security, "alerts": alerts}) as (_, client):
        client.headers.update(SERVICE)
        await abnormal_episode(client, "cam-prod")
        await wait_alerts(client, "sent", 1)
        [payload] = hooks.webhook
        link = path_of(payload["ack_url"])
        del client.headers["Authorization"]
        assert (await client.get(f"/api/v1/incidents/{payload['incident_id']}")).status_code == 401
        r = await client.get(link)
        assert_page(r, 200, "cam-prod")
        assert r.headers["strict-transport-security"].startswith("max-age=")
        # As a browser submits the form: same-origin Origin header, form content type.
        r = await client.post(
            link,
            headers={
                "Origin": ORIGIN,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert_page(r, 200, "확인되었습니다")
        client.headers.update(SERVICE)
        detail = await incident(client, payload["incident_id"])
        assert detail["acked_via"] == "link" and detail["acked_channel"] == "webhook"
