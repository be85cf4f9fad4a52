"""The dashboard's pages and static files in process: served without a token, under the
HTML security headers, holding no data, and escaping what the URL puts in them."""

from __future__ import annotations

import httpx
import pytest

PAGES = [
    "/dashboard",
    "/dashboard/queues/emails",
    "/dashboard/queues/emails/dead",
    "/dashboard/tasks/01M91ZGRMZQJ519AVS1E1XS4FP",
    "/dashboard/workers",
    "/dashboard/schedules",
]


@pytest.mark.anyio
@pytest.mark.parametrize("path", PAGES)
async def test_pages_need_no_token_and_carry_the_html_policy(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert '<script type="module" src="/dashboard/static/main.js"></script>' in response.text


@pytest.mark.anyio
async def test_a_name_from_the_url_is_escaped(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/queues/%3Cimg%20src%3Dx%20onerror%3D%22alert(1)%22%3E")
    assert response.status_code == 200
    assert "<img src=x" not in response.text
    assert 'data-queue="&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"' in response.text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("main.js", "text/javascript"),
        ("events.js", "text/javascript"),
        ("dashboard.css", "text/css"),
    ],
)
async def test_static_files_are_served(
    client: httpx.AsyncClient, name: str, media_type: str
) -> None:
    response = await client.get(f"/dashboard/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)


@pytest.mark.anyio
async def test_an_unknown_dashboard_path_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
