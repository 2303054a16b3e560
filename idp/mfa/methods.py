"""Setting up, listing and removing second factors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as DbSession

from idp.accounts.models import User
from idp.accounts.throttle import AccountThrottle
from idp.audit.alerts import SecurityAlerts
from idp.audit.service import ClientInfo
from idp.errors import Conflict, DeliveryUnavailable, EmailNotVerified, InvalidCode, NotFound, SetupReplaced
from idp.mfa import totp
from idp.mfa.backup_codes import BackupCodes
from idp.mfa.codes import CODE_TTL, OneTimeCodes
from idp.mfa.devices import TrustedDevices
from idp.mfa.models import TwoFactorMethod
from idp.models import affected
from idp.security.secretbox import SecretBox

if TYPE_CHECKING:
    from idp.delivery import Delivery

CODE_CHANNELS = ("sms", "email")  # the methods that send codes
READABLE_TYPE = {"totp": "An authenticator app", "sms": "Text messages to your phone", "email": "Codes by email"}


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_url: str
    qr_code: str


class TwoFactorService:
    """A user's second factors. Every change is audited and announced by email (SecurityAlerts)."""

    def __init__(
        self,
        db: DbSession,
        box: SecretBox,
        codes: OneTimeCodes,
        backup_codes: BackupCodes,
        devices: TrustedDevices,
        alerts: SecurityAlerts,
        delivery: Delivery,
        code_send_throttle: AccountThrottle,
        *,
        issuer_name: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._box = box
        self._codes = codes
        self._backup = backup_codes
        self._devices = devices
        self._alerts = alerts
        self._delivery = delivery
        self._code_sends = code_send_throttle
        self._issuer_name = issuer_name
        self._clock = clock

    # -- reading ---------------------------------------------------------------------------

    def methods(self, user_id: str) -> list[TwoFactorMethod]:
        """Verified methods, oldest first."""
        return list(
            self._db.scalars(
                select(TwoFactorMethod)
                .where(TwoFactorMethod.user_id == user_id, TwoFactorMethod.verified_at.is_not(None))
                .order_by(TwoFactorMethod.created_at)
            )
        )

    def _pending(self, user_id: str, kind: str) -> TwoFactorMethod | None:
        return self._db.scalar(
            select(TwoFactorMethod).where(
                TwoFactorMethod.user_id == user_id, TwoFactorMethod.type == kind, TwoFactorMethod.verified_at.is_(None)
            )
        )

    def _new_pending(self, user: User, kind: str, **fields: str) -> TwoFactorMethod:
        """Replace any earlier unfinished setup of this type; the verified method stays active."""
        if not user.email_verified:
            raise EmailNotVerified()
        self._db.execute(
            delete(TwoFactorMethod).where(
                TwoFactorMethod.user_id == user.id, TwoFactorMethod.type == kind, TwoFactorMethod.verified_at.is_(None)
            )
        )
        method = TwoFactorMethod(user_id=user.id, type=kind, created_at=self._clock(), **fields)
        self._db.add(method)
        self._db.flush()
        return method

    # -- TOTP ------------------------------------------------------------------------------

    def start_totp(self, user: User) -> TotpSetup:
        secret = totp.new_secret()
        self._new_pending(user, "totp", secret=self._box.encrypt(secret))
        self._db.commit()
        return self._setup_of(user, secret)

    def pending_totp_setup(self, user: User) -> TotpSetup | None:
        """The key waiting for its first code, to show it again after a wrong one; None when none
        waits (finished, or never begun). A page shows this, never a key the client sent back."""
        pending = self._pending(user.id, "totp")
        if pending is None or pending.secret is None:
            return None
        return self._setup_of(user, self._box.decrypt(pending.secret))

    def _setup_of(self, user: User, secret: str) -> TotpSetup:
        uri = totp.provisioning_uri(secret, account=user.email, issuer=self._issuer_name)
        return TotpSetup(secret, uri, totp.qr_data_url(uri))

    def confirm_totp(self, user: User, code: str, *, secret: str | None, client: ClientInfo) -> list[str]:
        """Enable the pending TOTP secret after a correct code; returns a fresh set of backup codes.
        A `secret` sent by the client must be the pending one: the client never chooses it."""
        pending = self._pending(user.id, "totp")
        if pending is None or pending.secret is None:
            raise Conflict("Start TOTP setup first")
        stored = self._box.decrypt(pending.secret)
        if secret is not None and secret.replace(" ", "").upper() != stored:
            raise SetupReplaced()
        step = totp.verify(stored, code, now=self._clock(), last_step=0)
        if step is None:
            raise InvalidCode()
        pending.last_used_step = step
        return self._enable(user, pending, client, always_new_backup_codes=True) or []

    # -- SMS and email -----------------------------------------------------------------------

    def start_sms(self, user: User, phone_number: str, *, client: ClientInfo) -> None:
        self._require_sms()
        method = self._new_pending(user, "sms", phone_number=phone_number)
        self._send_setup_code(user, method)

    def start_email(self, user: User, email: str, *, client: ClientInfo) -> None:
        method = self._new_pending(user, "email", email=email.strip().lower())
        self._send_setup_code(user, method)

    def _require_sms(self) -> None:
        if not self._delivery.sms_available():
            raise DeliveryUnavailable("SMS delivery is not configured on this server")

    def _send_setup_code(self, user: User, method: TwoFactorMethod) -> None:
        self.throttle_code_send(user.id)
        code = self._codes.issue(user_id=user.id, purpose="setup", channel=method.type, method_id=method.id)
        self.deliver_code(user, method, code, purpose="confirm this address for sign-in codes")
        self._db.commit()

    def code_sends_blocked(self, user_id: str) -> bool:
        return self._code_sends.blocked(user_id)

    def throttle_code_send(self, user_id: str) -> None:
        self._code_sends.take(user_id, "Too many codes sent; try again later")

    def deliver_code(self, user: User, method: TwoFactorMethod, code: str, *, purpose: str) -> None:
        minutes = int(CODE_TTL.total_seconds() // 60)
        if method.type == "sms":
            self._delivery.sms(
                method.phone_number or "", "login-code", code=code, minutes=minutes, service_name=self._issuer_name
            )
        else:
            self._delivery.email(
                method.email or "", "login-code", username=user.username, code=code, minutes=minutes, purpose=purpose
            )

    def confirm_code_method(self, user: User, kind: str, code: str, *, client: ClientInfo) -> list[str] | None:
        """Enable the pending SMS or email method; returns backup codes when 2FA was off until now."""
        pending = self._pending(user.id, kind)
        if pending is None:
            raise Conflict(f"Start {kind} setup first")
        if self._codes.check(code, user_id=user.id, purpose="setup", method_id=pending.id) is None:
            self._db.commit()  # keep the failed-attempt count
            raise InvalidCode()
        return self._enable(user, pending, client, always_new_backup_codes=False)

    # -- enabling and removing ---------------------------------------------------------------

    def _enable(
        self, user: User, method: TwoFactorMethod, client: ClientInfo, *, always_new_backup_codes: bool
    ) -> list[str] | None:
        now = self._clock()
        self._lock_account(user)
        # Claimed first, atomically: of two submissions of the same setup (a double click), only
        # one enables it and hands out backup codes; the other is told it is already done, as it
        # is when it arrives after the first one's commit.
        claimed = self._db.execute(
            update(TwoFactorMethod)
            .where(TwoFactorMethod.id == method.id, TwoFactorMethod.verified_at.is_(None))
            .values(verified_at=now)
            .execution_options(synchronize_session=False)
        )
        if not affected(claimed):
            self._db.rollback()
            raise Conflict("This setup is already confirmed")
        replaced = self._db.scalars(
            delete(TwoFactorMethod)
            .where(
                TwoFactorMethod.user_id == user.id,
                TwoFactorMethod.type == method.type,
                TwoFactorMethod.verified_at.is_not(None),
                TwoFactorMethod.id != method.id,
            )
            .returning(TwoFactorMethod.id)
        ).all()
        if replaced:
            self._retire_login_codes(user, method.type)
        method.verified_at = now
        was_enabled = user.two_factor_enabled
        user.two_factor_enabled = True
        user.updated_at = now
        codes = self._backup.generate(user.id) if always_new_backup_codes or not was_enabled else None
        # One event and one email for the whole change: what was added, what it replaced (the old
        # app or phone stops working), and whether the backup codes the user had stopped working.
        what = READABLE_TYPE[method.type]
        sentence = f"{what} replaced the one set up before." if replaced else f"{what} was added as a second factor."
        if codes is not None and was_enabled:
            sentence += " New backup codes were generated; the old ones no longer work."
        self._alerts.notify(
            "2fa_enabled",
            user,
            client=client,
            sentence=sentence,
            details={
                "method": method.type,
                "methodId": method.id,
                "replacedMethodIds": list(replaced),
                "backupCodesReplaced": codes is not None and was_enabled,
            },
        )
        self._db.commit()
        return codes

    def remove(self, user: User, method_id: str, *, client: ClientInfo) -> bool:
        """Remove a verified method; removing the last one turns 2FA off, deletes the backup codes
        and forgets trusted devices. Returns whether 2FA is still on."""
        self._lock_account(user)
        method = self._db.get(TwoFactorMethod, method_id)
        if method is None or method.user_id != user.id or method.verified_at is None:
            raise NotFound("Two-factor method not found")
        self._db.delete(method)
        self._db.flush()
        self._retire_login_codes(user, method.type)
        still_on = bool(self.methods(user.id))
        if not still_on:
            user.two_factor_enabled = False
            user.updated_at = self._clock()
            self._backup.delete_all(user.id)
            self._devices.remove_all(user.id)
        self._alerts.notify(
            "2fa_disabled",
            user,
            client=client,
            sentence=f"{READABLE_TYPE[method.type]} was removed"
            + ("." if still_on else "; two-factor authentication is now off."),
            details={"method": method.type, "methodId": method.id, "twoFactorEnabled": still_on},
        )
        self._db.commit()
        return still_on

    def _retire_login_codes(self, user: User, kind: str) -> None:
        """A sign-in code already sent to a phone or address that stops being the user's (removed,
        or replaced by a new one) stops working with it: it had signed in for 5 more minutes, the
        second factor of whoever holds the lost phone."""
        if kind in CODE_CHANNELS:
            self._codes.retire_sent_by(user_id=user.id, purpose="login", channel=kind)

    def _lock_account(self, user: User) -> None:
        """Hold the account's row until the commit, and read it again. A change to the account's
        factors then waits for any other in progress: two removals at once each counted the other's
        method as still there (its delete not yet committed), and left 2FA on with no method."""
        self._db.execute(select(User).where(User.id == user.id).with_for_update().execution_options(populate_existing=True))

    def reset(self, user: User, *, by: str | None, client: ClientInfo) -> None:
        """An administrator's reset: every method (set up or pending), backup code and trusted
        device is gone and 2FA is off; the user sets a factor up again. Commits."""
        self._lock_account(user)
        self._db.execute(delete(TwoFactorMethod).where(TwoFactorMethod.user_id == user.id))
        for kind in CODE_CHANNELS:
            self._retire_login_codes(user, kind)
        self._backup.delete_all(user.id)
        self._devices.remove_all(user.id)
        user.two_factor_enabled = False
        user.updated_at = self._clock()
        self._alerts.notify(
            "2fa_disabled",
            user,
            client=client,
            sentence="An administrator reset your two-factor authentication; set it up again to protect your account.",
            details={"reason": "admin_reset", "by": by, "twoFactorEnabled": False},
        )
        self._db.commit()

    def forget_devices(self, user: User, *, client: ClientInfo, device_id: str | None = None) -> int:
        """Stop trusting one device (NotFound if it is not the user's) or all of them."""
        if device_id is None:
            count = self._devices.remove_all(user.id)
        elif not (count := int(self._devices.remove(user.id, device_id))):
            raise NotFound("Trusted device not found")
        self._alerts.notify(
            "trusted_device_removed",
            user,
            client=client,
            sentence="A trusted device was removed." if device_id else "Every trusted device was removed.",
            details={"deviceId": device_id, "count": count},
        )
        self._db.commit()
        return count

    def regenerate_backup_codes(self, user: User, *, client: ClientInfo) -> list[str]:
        if not user.two_factor_enabled:
            raise Conflict("Two-factor authentication is off; there are no backup codes to replace")
        codes = self._backup.generate(user.id)
        self._alerts.notify(
            "backup_codes_generated",
            user,
            client=client,
            sentence="New backup codes were generated; the old ones no longer work.",
        )
        self._db.commit()
        return codes


def reencrypt_totp_secrets(db: DbSession, box: SecretBox) -> int:
    """Re-encrypt every TOTP secret under the newest ENCRYPTION_KEYS entry (key rotation)."""
    methods = db.scalars(select(TwoFactorMethod).where(TwoFactorMethod.secret.is_not(None))).all()
    for method in methods:
        method.secret = box.rotate(method.secret or "")
    db.commit()
    return len(methods)
