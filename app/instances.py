"""What every instance of one deployment must agree on: the secret key.

Cookies and form tokens are signed with the secret key. Behind a load balancer a learner's
requests go to any instance, so every instance must sign with the same key: with one
generated per instance (`var_dir/secret_key`, on each machine), or set differently on two, a
learner would be logged out, or refused a form, every time the balancer switched. So the
first instance records a fingerprint of its key in the database it shares with the others,
and an instance whose key differs refuses to start, saying how to set one key for all. A key
changed on purpose is adopted with `python -m app adopt-secret-key`.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import begin_write
from app.models import DeploymentSetting, utcnow

FINGERPRINT = "secret_key_fingerprint"


class SecretKeyMismatch(RuntimeError):
    """This instance's key is not the one its database's other instances use."""


def fingerprint(key: str) -> str:
    """An HMAC of a constant under the key: equal for equal keys, and no key to be read."""
    return hmac.new(
        key.encode(), b"tracewise: the instances' secret key", hashlib.sha256
    ).hexdigest()


def check_shared_secret(session: Session, settings: Settings) -> None:
    """Record this instance's key if none is recorded yet, or refuse (SecretKeyMismatch) a
    key that is not the recorded one. Commits."""
    mine = fingerprint(settings.signing_key())
    begin_write(session)
    row = session.get(DeploymentSetting, FINGERPRINT)
    if row is None:
        session.add(DeploymentSetting(name=FINGERPRINT, value=mine))
    elif row.value != mine:
        session.rollback()
        raise SecretKeyMismatch(_mismatch(settings))
    session.commit()


def adopt_secret_key(session: Session, settings: Settings) -> None:
    """Record this instance's key as the one every instance must use. Commits."""
    begin_write(session)
    row = session.get(DeploymentSetting, FINGERPRINT)
    if row is None:
        row = DeploymentSetting(name=FINGERPRINT)
        session.add(row)
    row.value, row.updated_at = fingerprint(settings.signing_key()), utcnow()
    session.commit()


def _mismatch(settings: Settings) -> str:
    where = (
        "TRACEWISE_SECRET_KEY"
        if settings.secret_key is not None
        else f"the key this instance generated in {settings.var_dir / 'secret_key'}"
    )
    return (
        f"This instance's secret key ({where}) is not the one the other instances of this "
        "database sign cookies with. Every instance must use the same key: set "
        "TRACEWISE_SECRET_KEY to one value on all of them, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_hex(32))'`. If the key was changed "
        "on purpose, stop every instance, set the new key on all, and run "
        "`python -m app adopt-secret-key` once."
    )
