"""A person claims an agent in a real browser: headless Chromium (Debian's package) driven by Playwright.

The real server runs; an agent registers over HTTP; the operator opens the claimUrl it got, logs in
on the admin's login page, lands on the claim page, claims with the token, sees the success message,
and the agent's next poll receives its key. A screenshot of the claim page is kept in artifacts/."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from agents.keys import api_key_hash
from agents.models import Agent
from tests.factories import PASSWORD, MembershipFactory, SectionFactory, TenantFactory, UserFactory
from tests.server import ROOT, start_server

pytestmark = [pytest.mark.browser, pytest.mark.server]

TOKEN = "Br0wserT0ken" * 5 + "abcd"  # 64 chars, as the agent prints it
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def chromium_executable() -> str:
    """Debian's chromium. Missing: a skip on a workstation, a failure in CI (.ci/run installs it)."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = "Chromium is not installed (apt-get install -y chromium)"
    if in_ci():
        pytest.fail(f"{message}; CI must run the browser test")
    pytest.skip(message)


def keep_artifacts(*files: Path) -> None:
    """Copy into artifacts/ (git-ignored, kept by CI), atomically: runs in parallel may write the same names."""
    ARTIFACTS.mkdir(exist_ok=True)
    for file in files:
        partial = ARTIFACTS / f".{file.name}.{uuid.uuid4().hex}"
        shutil.copyfile(file, partial)
        os.replace(partial, ARTIFACTS / file.name)


@pytest.fixture
def live(transactional_db, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  drain_delay: 0s\n")
    server = start_server(tmp_path, args=["--config", str(config)])
    yield server
    server.stop()


@pytest.fixture
def operator_and_section(transactional_db):
    """A staff operator (not a superuser) with a password, and a section of the tenant."""
    tenant = TenantFactory(name="Browser Tenant")
    section = SectionFactory(tenant=tenant, name="browser-edge")
    user = UserFactory(username="browserop", is_staff=True)
    MembershipFactory(user=user, tenant=tenant, role="operator")
    return user, section


def test_an_operator_claims_an_agent_in_the_browser(live, operator_and_section, tmp_path):
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    user, section = operator_and_section
    section_id = str(section.pk)
    agent_id = uuid.uuid4()
    registered = live.request(
        "POST",
        "/v1/agent/register",
        {
            "agentId": str(agent_id),
            "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
            "hostname": "probe-browser",
            "agentVersion": "0.4.2",
            "ipAddresses": [{"ip": "192.0.2.77", "iface": "eth0", "family": "ipv4", "recommended": True}],
        },
    )
    assert registered.status == 201, registered.body
    claim_url = registered.json()["claimUrl"]
    claim_path = f"/admin/agents/agentregistration/{agent_id}/claim/"
    assert claim_url == live.url + claim_path
    screenshot = tmp_path / "claim-page.png"

    # No database access in here: Playwright's event loop makes Django refuse synchronous queries.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile: no cookies, no session
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)

            page.goto(claim_url)
            assert page.url.startswith(f"{live.url}/admin/login/")  # not logged in yet
            page.fill("#id_username", user.username)
            page.fill("#id_password", PASSWORD)
            page.click("#login-form input[type=submit]")

            page.wait_for_url(claim_url)  # back to the claim page after the login
            assert page.locator("h2").first.inner_text() == "Claim agent probe-browser"
            assert "192.0.2.77" in page.content()
            page.fill("#id_claim_token", TOKEN)
            page.select_option("#id_section", section_id)
            page.fill("#id_name", "browser-probe")
            page.screenshot(path=str(screenshot), full_page=True)

            page.click("input[name=_claim]")
            page.wait_for_url(re.compile(re.escape(f"{live.url}/admin/agents/agent/{agent_id}/change/")))
            success = page.locator(".messagelist .success").inner_text()
            page.screenshot(path=str(tmp_path / "claim-success.png"), full_page=True)
        finally:
            browser.close()

    assert "Agent browser-probe claimed" in success
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 5_000
    keep_artifacts(screenshot, tmp_path / "claim-success.png")

    poll = live.request("GET", f"/v1/agent/{agent_id}/claim-status")
    assert poll.status == 200
    delivered = poll.json()
    assert delivered["status"] == "claimed"
    agent = Agent.objects.get(pk=agent_id)
    assert (agent.name, agent.section_id, agent.claimed_by_id) == ("browser-probe", section.pk, user.pk)
    assert agent.api_key_hash == api_key_hash(delivered["apiKey"])
    config = live.request(
        "GET", f"/v1/agent/{agent_id}/configuration", headers={"X-Agent-API-Key": delivered["apiKey"]}
    )
    assert config.status == 200


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_chromium_skips_only_outside_ci(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(outcome, match="Chromium is not installed"):
        chromium_executable()
