"""Two gateway processes on one Redis: a sign-in crosses nodes; one-time values are accepted once."""

from __future__ import annotations

import asyncio

from eid_gateway.eid.tctoken import ErrorTcToken, TcToken

from .conftest import STATUS_SUCCESS, Cluster, NewCitizen


async def test_tc_token_from_node_a_and_refresh_on_node_b(cluster: Cluster, new_citizen: NewCitizen) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    citizen = new_citizen()
    await citizen.begin(a)
    assert "Mit der AusweisApp anmelden" in await citizen.start_page(b)
    token = await citizen.fetch_tc_token(a)
    assert isinstance(token, TcToken)
    assert token.refresh_address == f"{cluster.public_origin}/eid/refresh/{citizen.ref}"
    next_url = await citizen.card_step()
    status, page = await citizen.refresh(b, next_url)
    assert status == 200, page[:500]
    assert citizen.saml_status(page) == STATUS_SUCCESS
    # the flow is done everywhere: neither node answers the refresh again
    for node in (a, b):
        again, _ = await citizen.refresh(node, next_url)
        assert again == 410


# --- the same one-time value at both nodes at once, many times ------------------------------------------

ROUNDS = 15


async def test_same_authn_request_at_both_nodes_begins_one_flow(cluster: Cluster, new_citizen: NewCitizen) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    for _ in range(ROUNDS):
        citizen = new_citizen()
        sso = citizen.sso_url()
        answers = await asyncio.gather(*(citizen.get(node.url(sso)) for node in (a, b, a, b)))
        began = [r for r in answers if r.status == 303]
        assert len(began) == 1
        for r in answers:
            if r.status != 303:  # the replay gets a signed SAML error Response for the service
                page = await r.text()
                assert r.status == 200 and 'name="SAMLResponse"' in page
                assert citizen.saml_status(page) == "urn:oasis:names:tc:SAML:2.0:status:Requester"


async def test_same_tc_token_reference_at_both_nodes_opens_one_eid_session(
    cluster: Cluster, new_citizen: NewCitizen
) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    for _ in range(ROUNDS):
        citizen = new_citizen()
        await citizen.begin(a)
        tokens = await asyncio.gather(*(citizen.fetch_tc_token(node) for node in (a, b, b, a)))
        valid = [t for t in tokens if isinstance(t, TcToken)]
        assert len(valid) == 1
        assert all(isinstance(t, ErrorTcToken) for t in tokens if t is not valid[0])


async def test_same_refresh_at_both_nodes_releases_once(cluster: Cluster, new_citizen: NewCitizen) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    for _ in range(ROUNDS):
        citizen = new_citizen()
        await citizen.begin(b)
        assert isinstance(await citizen.fetch_tc_token(a), TcToken)
        next_url = await citizen.card_step()
        answers = await asyncio.gather(*(citizen.refresh(node, next_url) for node in (a, b, a, b)))
        released = [page for status, page in answers if status == 200]
        assert len(released) == 1 and citizen.saml_status(released[0]) == STATUS_SUCCESS
        assert sorted(status for status, _ in answers) == [200, 410, 410, 410]


async def _oidc_code(cluster: Cluster, new_citizen: NewCitizen) -> tuple[str, str]:
    """A full OIDC sign-in of the demo public client (PKCE); returns (code, verifier)."""
    import base64
    import hashlib
    import secrets
    from urllib.parse import parse_qs, urlencode, urlsplit

    a, b = cluster.nodes["a"], cluster.nodes["b"]
    citizen = new_citizen()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "demo-oidc",
            "scope": "openid",
            "redirect_uri": cluster.public_origin + "/demo/oidc/callback",
            "state": "st",
            "nonce": "n",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    await citizen.begin(a, f"/oidc/authorize?{query}")
    assert isinstance(await citizen.fetch_tc_token(b), TcToken)
    resp = await citizen.get(a.url(await citizen.card_step()))
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith(cluster.public_origin + "/demo/oidc/callback?")
    [code] = parse_qs(urlsplit(location).query)["code"]
    return code, verifier


async def test_same_oidc_code_at_both_nodes_is_redeemed_once(cluster: Cluster, new_citizen: NewCitizen) -> None:
    """One redemption wins the code (the store's consume_once); the replays, on whichever node, revoke
    what it issued (RFC 9700): so a token obtained in a race never works afterwards."""
    import aiohttp

    a, b = cluster.nodes["a"], cluster.nodes["b"]
    async with aiohttp.ClientSession() as rp:
        for _ in range(ROUNDS):
            code, verifier = await _oidc_code(cluster, new_citizen)
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": "demo-oidc",
                "redirect_uri": cluster.public_origin + "/demo/oidc/callback",
                "code_verifier": verifier,
            }

            async def redeem(node_url: str) -> tuple[int, dict[str, str]]:
                async with rp.post(node_url, data=form) as r:  # noqa: B023 - awaited in this iteration
                    return r.status, await r.json()

            answers = await asyncio.gather(*(redeem(n.url("/oidc/token")) for n in (a, b, a, b)))
            # the winner either got tokens or found its grant already revoked by a replay
            winners = [
                body
                for status, body in answers
                if status == 200 or body.get("error_description") == "code already used"
            ]
            losers = [
                body
                for status, body in answers
                if status == 400 and body.get("error_description") == "code unknown, expired or already used"
            ]
            assert len(winners) == 1 and len(losers) == 3, answers
            if "access_token" in winners[0]:
                headers = {"Authorization": f"Bearer {winners[0]['access_token']}"}
                async with rp.get(b.url("/oidc/userinfo"), headers=headers) as r:
                    assert r.status == 401  # revoked by the replays


async def test_metrics_funnel_failures_and_no_personal_data(cluster: Cluster, new_citizen: NewCitizen) -> None:
    import re

    import aiohttp

    a, b = cluster.nodes["a"], cluster.nodes["b"]

    async def scrape(node_url: str) -> str:
        async with aiohttp.ClientSession() as http:
            async with http.get(node_url) as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
                return await r.text()

    def value(text: str, name: str, **labels: str) -> float:
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        selector = f"{{{want}}}" if want else ""
        m = re.search(rf"^{name}{re.escape(selector)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    before = await scrape(b.url("/metrics"))
    refs = []
    for identity in ("erika", "cancelled", "blocked"):
        c = new_citizen()
        refs.extend([await c.begin(b), c.address])
        await c.start_page(b)
        await c.start_page(b)  # a reload is not a second funnel entry
        await c.fetch_tc_token(b)
        status, _ = await c.refresh(b, await c.card_step(identity=identity))
        assert status == 200
    never = new_citizen()  # AusweisApp never fetches the TC Token: a drop-out between start page and tctoken
    refs.append(await never.begin(b))
    await never.start_page(b)
    after = await scrape(b.url("/metrics"))

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    base = {"service": "demo", "frontend": "saml"}
    assert delta("eidgw_signins_started_total", backend="tr03130", **base) == 4
    assert delta("eidgw_signin_steps_total", step="start_page", **base) == 4
    assert delta("eidgw_signin_steps_total", step="tctoken", **base) == 3
    assert delta("eidgw_signin_steps_total", step="refresh", **base) == 3
    assert delta("eidgw_signins_completed_total", backend="tr03130", **base) == 1
    assert delta("eidgw_signins_failed_total", backend="tr03130", reason="cancelled", step="refresh", **base) == 1
    assert delta("eidgw_signins_failed_total", backend="tr03130", reason="card_blocked", step="refresh", **base) == 1
    assert value(after, "eidgw_eid_server_up") == 1
    assert value(after, "eidgw_eid_server_call_seconds_count", operation="useID", outcome="ok") >= 3
    assert value(after, "eidgw_step_duration_seconds_count", step="tctoken") >= 3
    # labels never carry flow references, addresses or card data
    for secret in [*refs, "ERIKA", "MUSTERMANN"]:
        assert secret not in after
    # node a counted nothing of this: metrics are per node (Prometheus sums them)
    assert (
        value(await scrape(a.url("/metrics")), "eidgw_signins_completed_total", backend="tr03130", **base)
        < value(after, "eidgw_signins_completed_total", backend="tr03130", **base) + 100
    )


async def test_a_signin_costs_at_most_10_store_round_trips(cluster: Cluster, new_citizen: NewCitizen) -> None:
    """SAML request replay check, limits, flow create / read / four transitions, audit: <= 10 requests
    to Redis per sign-in (read from the nodes' own counters, exported as a metric)."""
    import re

    import aiohttp

    async def round_trips() -> float:
        total = 0.0
        async with aiohttp.ClientSession() as http:
            for node in cluster.nodes.values():
                async with http.get(node.url("/metrics")) as r:
                    m = re.search(r"^eidgw_store_round_trips_total (\S+)$", await r.text(), re.M)
                    assert m
                    total += float(m.group(1))
        return total

    a, b = cluster.nodes["a"], cluster.nodes["b"]

    async def sign_in() -> None:
        c = new_citizen()
        await c.begin(a)
        await c.start_page(a)
        await c.fetch_tc_token(b)
        status, page = await c.refresh(a, await c.card_step())
        assert status == 200 and c.saml_status(page) == STATUS_SUCCESS

    await sign_in()  # warm: node a knows the audit trail's tail
    before = await round_trips()
    await sign_in()
    assert await round_trips() - before <= 10
