"""Signing in through the real sign-in pages, two-factor included."""

from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.support.factories import PASSWORD


def code_for(device: TOTPDevice, step_offset: int = 0) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift + step_offset):0{device.digits}d}"


def enrol_totp(user) -> TOTPDevice:
    """A confirmed authenticator for the user, as if enrolled earlier."""
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def sign_in_verified(client, user, password: str = PASSWORD) -> TOTPDevice:
    """Password, then a TOTP code: the session ends up signed in and two-factor verified."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or enrol_totp(user)
    response = client.post(reverse("login"), {"username": user.username, "password": password})
    assert response.status_code == 302 and response.url == reverse("security:code"), response
    response = client.post(reverse("security:code"), {"token": code_for(device)})
    assert response.status_code == 302, response.content[:500]
    return device
