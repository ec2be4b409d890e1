import pytest
from django.test import Client

from tests.support.signin import sign_in_verified


@pytest.fixture
def support_client(cast):
    """Support staff signed in through the real sign-in, with a verified TOTP code."""
    client = Client()
    sign_in_verified(client, cast.support)
    return client
