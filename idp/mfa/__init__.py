"""Second factors: TOTP, SMS and email codes, backup codes, trusted devices, and the login challenge."""
