"""What every instance of one deployment must agree on: the secret key.

Cookies and form tokens are signed with the secret key. Behind a load balancer a learner's
requests go to any instance, so every instance must sign with the same key: with one
generated per instance (`var_dir/secret_key`, on each machine), a learner would be logged
out, or refused a form, every time the balancer switched. So each instance records a
fingerprint of its key in the database it shares with the others; an instance with a
*generated* key that differs from the recorded one refuses to start and says how to set one
key for all. A key set in the environment is the administrator's choice: it is recorded,
and an instance with a generated key will not start beside it.
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
    """This instance's generated key is not the one its database's other instances use."""


def fingerprint(key: str) -> str:
    """An HMAC of a constant under the key: equal for equal keys, and no key to be read."""
    return hmac.new(
        key.encode(), b"tracewise: the instances' secret key", hashlib.sha256
    ).hexdigest()


def check_shared_secret(session: Session, settings: Settings) -> None:
    """Record this instance's key, or refuse (SecretKeyMismatch) a generated key that is
    not the one recorded. Commits."""
    mine = fingerprint(settings.signing_key())
    begin_write(session)
    row = session.get(DeploymentSetting, FINGERPRINT)
    if row is not None and row.value != mine and settings.secret_key is None:
        session.rollback()
        raise SecretKeyMismatch(
            "Another instance of Tracewise on this database signs cookies with a different "
            "secret key, and this one generated its own (in "
            f"{settings.var_dir / 'secret_key'}). Every instance must use the same key: set "
            "TRACEWISE_SECRET_KEY to one value on all of them, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    if row is None:
        session.add(DeploymentSetting(name=FINGERPRINT, value=mine))
    elif row.value != mine:
        row.value, row.updated_at = mine, utcnow()
    session.commit()
