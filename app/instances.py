"""What every instance of one deployment must agree on: the schema and the secret key.

An instance serves only a database at its own schema (a course upgrading runs `migrate`
once; an instance of the new version refuses to start before it has).

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
from app.db import Database, begin_write, schema_is_current
from app.models import DeploymentSetting, utcnow

FINGERPRINT = "secret_key_fingerprint"


class CannotServe(RuntimeError):
    """This instance must not serve this database; the message says what to do."""


class SchemaNotCurrent(CannotServe):
    """The database needs migrating before this version of the app can serve it."""


class SecretKeyMismatch(CannotServe):
    """This instance's key is not the one its database's other instances use."""


def check_instance(database: Database, settings: Settings) -> None:
    """Refuse (CannotServe) a database not at this version's schema, or whose instances use
    another secret key; record this instance's key if none is recorded yet."""
    if not schema_is_current(database.engine):
        raise SchemaNotCurrent(
            "The database is not at this version's schema: run `python -m app migrate` "
            "first (`make run` and `serve --questions` do)."
        )
    with database.session() as session:
        check_shared_secret(session, settings)


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
    """Record the configured key (TRACEWISE_SECRET_KEY) as the one every instance must use;
    a generated key is refused (SecretKeyMismatch): it is one machine's, not a deployment's.
    Commits."""
    if settings.secret_key is None:
        raise SecretKeyMismatch(
            "Set TRACEWISE_SECRET_KEY to the new key first: only a key set by you can be "
            "every instance's (this machine's generated one is not adopted)."
        )
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
        "database sign cookies with. Every instance must use the same key: give this one "
        "the TRACEWISE_SECRET_KEY the others have. If none has one set (the first instance "
        "generated its own), set one on all — e.g. the output of `python -c 'import secrets; "
        "print(secrets.token_hex(32))'` — and run `python -m app adopt-secret-key` once, "
        "with every instance stopped. A new key logs everyone out, and guests lose their "
        "progress: their cookie was signed with the old one."
    )
