import pytest

pytestmark = pytest.mark.django_db


def test_it_answers_the_api_info_at_every_mount(api_client):
    for path in ("/api/v1", "/v1"):
        response = api_client.get(path)
        assert response.status_code == 200
        assert response.json()["message"] == "Monitoring API"
        assert response.json()["api_version"] == "v1"


def test_it_serves_health_through_the_real_server(server):
    response = server.request("GET", "/healthz")
    assert response.status == 200
    assert response.json()["components"]["database"]["status"] == "healthy"
