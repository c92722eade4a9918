"""/api/docs (Swagger UI) and /api/redoc work without internet: every asset they load is ours."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|["'](\S+\.(?:js|css|png))["']""")


def assets(page: str) -> set[str]:
    return {first or second for first, second in ASSET.findall(page)}


@pytest.mark.parametrize("url", ["/api/docs", "/api/redoc"])
def test_the_docs_pages_reference_no_external_host(client, url):
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    found = assets(page)
    assert any(asset.endswith(".js") for asset in found), found
    external = [asset for asset in found if urlsplit(asset).netloc or asset.startswith("//")]
    assert not external, external
    assert "cdn." not in page and "unpkg" not in page and "jsdelivr" not in page


@pytest.mark.parametrize("url", ["/api/docs", "/api/redoc"])
def test_every_asset_of_the_docs_answers_200(client, url):
    page = client.get(url).content.decode()
    local = [asset for asset in assets(page) if asset.startswith("/static/")]
    assert local, assets(page)
    for asset in local:
        response = client.get(asset)
        assert response.status_code == 200, asset
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert body, asset


def test_the_schema_the_docs_load_is_served(client):
    response = client.get("/api/schema", {"format": "json"})
    assert response.status_code == 200 and response.json()["openapi"].startswith("3.")
