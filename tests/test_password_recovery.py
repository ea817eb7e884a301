"""Password recovery by mail through a real SMTP sink; the reset token works exactly once."""

import re
import uuid

import pytest

from tests.conftest import app_env
from tests.support.api import Api
from tests.support.smtp_sink import SmtpSink

GENERIC = {"message": "If that email is registered, we sent a password recovery link"}


@pytest.fixture(scope="module")
def mail():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def mail_api(pg_url, redis_url, mail):
    from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, create_superuser
    from tests.support.devhost_process import DevhostProcess

    env = app_env(
        pg_url,
        redis_url,
        **mail.app_settings(),
        FRONTEND_HOST="http://frontend.example.com",
    )
    create_superuser(env)
    with (
        DevhostProcess(env=env) as server,
        Api(server.url, SUPERUSER, SUPERUSER_PASSWORD, env) as client,
    ):
        yield client


def _token_from(mail, address: str) -> str:
    html = mail.html_of(mail.wait_for(address, subject="Password recovery"))
    match = re.search(r'href="http://frontend\.example\.com/reset-password\?token=([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_recovery_mail_link_resets_the_password_once(mail_api, mail):
    user = mail_api.new_user()
    response = mail_api.request("POST", f"/api/v1/password-recovery/{user.email}")
    assert response.status_code == 200 and response.json() == GENERIC
    token = _token_from(mail, user.email)

    reset = mail_api.request(
        "POST", "/api/v1/reset-password/", json={"token": token, "new_password": "brand-new-pass"}
    )
    assert reset.status_code == 200
    assert reset.json() == {"message": "Password updated successfully"}
    assert mail_api.login(user.email, "brand-new-pass")

    reuse = mail_api.request(
        "POST", "/api/v1/reset-password/", json={"token": token, "new_password": "another-pass-1"}
    )
    assert reuse.status_code == 400 and reuse.json() == {"detail": "Invalid token"}


def test_unknown_addresses_get_the_same_answer_and_no_mail(mail_api, mail):
    address = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    response = mail_api.request("POST", f"/api/v1/password-recovery/{address}")
    assert response.status_code == 200 and response.json() == GENERIC
    assert all(m["To"] != address for m in mail.messages)


def test_bad_reset_tokens(mail_api):
    response = mail_api.request(
        "POST", "/api/v1/reset-password/", json={"token": "garbage", "new_password": "password-1"}
    )
    assert response.status_code == 400 and response.json() == {"detail": "Invalid token"}
    short = mail_api.request(
        "POST", "/api/v1/reset-password/", json={"token": "garbage", "new_password": "x"}
    )
    assert short.status_code == 422


def test_recovery_html_content_for_superusers(mail_api):
    user = mail_api.new_user()
    response = mail_api.request(
        "POST",
        f"/api/v1/password-recovery-html-content/{user.email}",
        headers=mail_api.admin.headers,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "reset-password?token=" in response.text
    assert user.email in response.headers["subject"]
    missing = mail_api.request(
        "POST",
        "/api/v1/password-recovery-html-content/nobody@example.com",
        headers=mail_api.admin.headers,
    )
    assert missing.status_code == 404
    assert missing.json() == {"detail": "The user with this username does not exist in the system."}


def test_test_email_is_201_and_arrives(mail_api, mail):
    address = f"test-{uuid.uuid4().hex[:6]}@example.com"
    response = mail_api.request(
        "POST", f"/api/v1/utils/test-email/?email_to={address}", headers=mail_api.admin.headers
    )
    assert response.status_code == 201
    assert response.json() == {"message": "Test email sent"}
    assert "Test email" in mail.wait_for(address)["Subject"]


def test_new_accounts_get_a_mail_without_their_password(mail_api, mail):
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    response = mail_api.request(
        "POST",
        "/api/v1/users/",
        json={"email": email, "password": "initial-password"},
        headers=mail_api.admin.headers,
    )
    assert response.status_code == 200
    html = mail.html_of(mail.wait_for(email))
    assert "initial-password" not in html


def test_without_smtp_recovery_still_answers_and_test_mail_is_503(api):
    user = api.new_user()
    response = api.request("POST", f"/api/v1/password-recovery/{user.email}")
    assert response.status_code == 200 and response.json() == GENERIC
    test_mail = api.request(
        "POST", "/api/v1/utils/test-email/?email_to=x@example.com", headers=api.admin.headers
    )
    assert test_mail.status_code == 503
    assert test_mail.json() == {"detail": "Email is not configured"}


def test_an_account_without_a_password_gets_no_recovery_mail(mail_api, mail, pg_url):
    """An Entra ID account's address came from a claim nobody verified: its mailbox must not
    become a way to give the account a password."""
    import psycopg

    address = f"entra-{uuid.uuid4().hex[:6]}@example.com"
    with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, is_active, is_superuser, entra_oid, created_at) "
            "VALUES (%s, %s, true, false, %s, now())",
            (uuid.uuid4(), address, uuid.uuid4()),
        )
    response = mail_api.request("POST", f"/api/v1/password-recovery/{address}")
    assert response.status_code == 200 and response.json() == GENERIC
    control = mail_api.new_user()
    mail_api.request("POST", f"/api/v1/password-recovery/{control.email}")
    mail.wait_for(control.email, subject="Password recovery")  # sent after the other's turn
    assert all(m["To"] != address for m in mail.messages)
