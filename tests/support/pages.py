"""Panel pages fetched with the test client as a browser in a given language asks for them."""

from django.http import HttpResponse


def get_page(client, url: str, language: str | None = None, *, user=None, **params) -> HttpResponse:
    """GET `url` with `params`, signed in as `user` if one is given, with `Accept-Language: <language>` (None: the
    client's own headers); the answer must be 200."""
    if user is not None:
        client.force_login(user)
    response = client.get(url, params, **({"HTTP_ACCEPT_LANGUAGE": language} if language else {}))
    assert response.status_code == 200, response
    return response


def page_text(client, url: str, language: str | None = None, *, user=None, **params) -> str:
    return get_page(client, url, language, user=user, **params).content.decode()
