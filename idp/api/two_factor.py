"""`/2fa`: setting up factors, the second step of login, backup codes and trusted devices."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from idp.api.auth import signed_in
from idp.api.cookies import clear_device_cookie, presented_device_token, set_device_cookie
from idp.api.documented import documented
from idp.api.envelope import ok, parse
from idp.api.guard import client_info, identity, require_bearer, require_recent_auth, require_recent_auth_once_protected
from idp.api.responses import (
    BackupCodeCount,
    BackupCodes,
    DeviceList,
    DevicesRemoved,
    MethodEnabled,
    MethodList,
    MethodRemoved,
    TotpSetup,
    TwoFactorSignedIn,
)
from idp.api.schemas import (
    CodeRequest,
    EmailSetupRequest,
    ResendRequest,
    SmsSetupRequest,
    VerifyBackupCodeRequest,
    VerifyLoginRequest,
    VerifySetupRequest,
)
from idp.api.users import device_view, method_view, user_summary
from idp.mfa.challenge import SecondFactorPassed
from idp.ratelimits import rate_limited
from idp.security.digests import digest
from idp.wiring import backup_codes, login_challenges, login_flow, trusted_devices, two_factor_service

bp = Blueprint("two_factor", __name__, url_prefix="/2fa")
SETUP_REFUSED = "The email address is not verified yet (`email_not_verified`), or 2FA is on and the sign-in is not recent"
DELIVERY_MISSING = "SMS or email delivery is not configured on this server"
WRONG_LOGIN_CODE = {
    400: "A wrong code (`invalid_code`)",
    401: "An invalid or expired tempToken, or one killed by five wrong codes (`invalid_temp_token`)",
}


# -- setup -------------------------------------------------------------------------------


@bp.post("/totp/setup")
@documented(responses={200: TotpSetup}, errors={403: SETUP_REFUSED})
@require_bearer
@require_recent_auth_once_protected
def totp_setup() -> Response:
    setup = two_factor_service().start_totp(identity().user)
    return ok({"secret": setup.secret, "otpauthUrl": setup.otpauth_url, "qrCode": setup.qr_code})


@bp.post("/totp/verify-setup")
@documented(
    request=VerifySetupRequest,
    responses={200: BackupCodes},
    errors={400: "A wrong code, or a secret that is not the pending one", 403: SETUP_REFUSED, 409: "No TOTP setup was started"},
)
@require_bearer
@require_recent_auth_once_protected
def totp_verify_setup() -> Response:
    data = parse(VerifySetupRequest)
    codes = two_factor_service().confirm_totp(identity().user, data.code, secret=data.secret, client=client_info())
    return ok({"backupCodes": codes}, message="Two-factor authentication enabled")


@bp.post("/sms/setup")
@documented(request=SmsSetupRequest, responses={200: None}, errors={403: SETUP_REFUSED, 503: DELIVERY_MISSING})
@require_bearer
@require_recent_auth_once_protected
def sms_setup() -> Response:
    data = parse(SmsSetupRequest)
    two_factor_service().start_sms(identity().user, data.phone_number, client=client_info())
    return ok(message="Verification code sent")


@bp.post("/email/setup")
@documented(request=EmailSetupRequest, responses={200: None}, errors={403: SETUP_REFUSED, 503: DELIVERY_MISSING})
@require_bearer
@require_recent_auth_once_protected
def email_setup() -> Response:
    data = parse(EmailSetupRequest)
    two_factor_service().start_email(identity().user, data.email, client=client_info())
    return ok(message="Verification code sent")


def _verify_code_method(kind: str) -> Response:
    data = parse(CodeRequest)
    codes = two_factor_service().confirm_code_method(identity().user, kind, data.code, client=client_info())
    return ok({"backupCodes": codes} if codes else {}, message="Two-factor method enabled")


@bp.post("/sms/verify-setup")
@documented(request=CodeRequest, responses={200: MethodEnabled}, errors={400: "A wrong code", 403: SETUP_REFUSED, 409: "No SMS setup was started"})
@require_bearer
@require_recent_auth_once_protected
def sms_verify_setup() -> Response:
    return _verify_code_method("sms")


@bp.post("/email/verify-setup")
@documented(request=CodeRequest, responses={200: MethodEnabled}, errors={400: "A wrong code", 403: SETUP_REFUSED, 409: "No email setup was started"})
@require_bearer
@require_recent_auth_once_protected
def email_verify_setup() -> Response:
    return _verify_code_method("email")


# -- login -------------------------------------------------------------------------------


def _sign_in(passed: SecondFactorPassed, *, trust_device: bool = False, device_name: str | None = None) -> Response:
    """Finish the login after a passed second factor: tokens, and the device cookie when trusted."""
    outcome = login_flow().with_second_factor(
        passed, trust_device=trust_device, device_name=device_name, client=client_info(), presented_device=presented_device_token()
    )
    assert outcome.session is not None
    body: dict[str, Any] = {"user": user_summary(outcome.user)}
    if outcome.device_token:
        body["deviceToken"] = outcome.device_token
    response = signed_in(body, outcome.session)
    if outcome.device_token:
        set_device_cookie(response, outcome.device_token)
    return response


@bp.post("/verify")
@documented(request=VerifyLoginRequest, responses={200: TwoFactorSignedIn}, errors=WRONG_LOGIN_CODE)
@rate_limited("two_factor")
def verify() -> Response:
    data = parse(VerifyLoginRequest)
    passed = login_challenges().verify(data.temp_token, data.code, client=client_info())
    return _sign_in(passed, trust_device=data.trust_device, device_name=data.device_name)


@bp.post("/verify-backup-code")
@documented(request=VerifyBackupCodeRequest, responses={200: TwoFactorSignedIn}, errors=WRONG_LOGIN_CODE)
@rate_limited("two_factor")
def verify_backup_code() -> Response:
    data = parse(VerifyBackupCodeRequest)
    return _sign_in(login_challenges().verify_backup_code(data.temp_token, data.code, client=client_info()))


@bp.post("/resend")
@documented(
    request=ResendRequest,
    responses={200: None},
    errors={400: "The method is not enabled for this account", 401: "An invalid or expired tempToken", 503: DELIVERY_MISSING},
)
def resend() -> Response:
    """Limited as a code sent (per user, and a cooldown), not as a code tried: clicks on "send
    again" must not spend the two-factor limit on tries the right code then needs."""
    data = parse(ResendRequest)
    login_challenges().resend(data.temp_token, data.method, client=client_info())
    return ok(message="A new code is on its way")


# -- management --------------------------------------------------------------------------


@bp.get("/methods")
@documented(responses={200: MethodList})
@require_bearer(scope="2fa:read")
def methods() -> Response:
    return ok({"methods": [method_view(m) for m in two_factor_service().methods(identity().user.id)]})


@bp.delete("/methods/<method_id>")
@documented(responses={200: MethodRemoved}, errors={403: "The sign-in is not recent"})
@require_bearer
@require_recent_auth
def delete_method(method_id: str) -> Response:
    still_on = two_factor_service().remove(identity().user, method_id, client=client_info())
    return ok({"twoFactorEnabled": still_on}, message="Two-factor method removed")


@bp.get("/backup-codes/count")
@documented(responses={200: BackupCodeCount})
@require_bearer(scope="2fa:read")
def backup_code_count() -> Response:
    return ok({"count": backup_codes().count(identity().user.id)})


@bp.post("/backup-codes/generate")
@documented(responses={200: BackupCodes}, errors={403: "The sign-in is not recent", 409: "Two-factor authentication is off"})
@require_bearer
@require_recent_auth
def generate_backup_codes() -> Response:
    codes = two_factor_service().regenerate_backup_codes(identity().user, client=client_info())
    return ok({"backupCodes": codes}, message="New backup codes generated; the old ones no longer work")


@bp.get("/devices")
@documented(responses={200: DeviceList})
@require_bearer(scope="2fa:read")
def devices() -> Response:
    return ok({"devices": [device_view(d) for d in trusted_devices().list(identity().user.id)]})


@bp.delete("/devices/<device_id>")
@documented(responses={200: None})
@require_bearer(scope="2fa:write")
def delete_device(device_id: str) -> Response:
    user = identity().user
    presented = presented_device_token()
    this_one = presented is not None and any(
        d.id == device_id and d.token_hash == digest(presented) for d in trusted_devices().list(user.id)
    )
    two_factor_service().forget_devices(user, client=client_info(), device_id=device_id)
    response = ok(message="Trusted device removed")
    if this_one:  # the caller's own browser: its cookie goes too, as the account page's removal does
        clear_device_cookie(response)
    return response


@bp.delete("/devices")
@documented(responses={200: DevicesRemoved})
@require_bearer(scope="2fa:write")
def delete_all_devices() -> Response:
    count = two_factor_service().forget_devices(identity().user, client=client_info())
    response = ok({"removed": count}, message="All trusted devices removed")
    clear_device_cookie(response)
    return response
