"""Accounts: sign up, log in, and the guest progress that comes along.

A visitor starts as a guest learner (see app.learning.learners). Signing up gives that guest
learner an account; logging in moves the guest's progress into the account's learner. Either
way nothing the guest did is lost. Passwords are hashed with argon2id; attempts are limited
per client address and failed log-ins per account.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.config import Settings
from app.db import begin_write, end_read
from app.errors import Forbidden, Invalid, NotFound, TooManyRequests
from app.learning import learners
from app.models import ApiToken, Learner, User, utcnow
from app.ratelimit import RateLimit

EMAIL_MAX_CHARS = 254  # the longest address SMTP can carry (RFC 5321)
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PASSWORD_MIN_CHARS = 8  # NIST SP 800-63B's floor for a chosen password
PASSWORD_MAX_CHARS = 1024  # long passphrases are welcome; megabytes to hash are not
LEARNER, INSTRUCTOR, ADMIN = "learner", "instructor", "admin"
ROLES = (LEARNER, INSTRUCTOR, ADMIN)
STAFF_ROLES = (INSTRUCTOR, ADMIN)  # who may author questions and read their statistics
SESSION_TOKEN_BYTES = 32
API_TOKEN_BYTES = 32
API_TOKEN_PREFIX = "tw_"  # tells a Tracewise token apart in a config file or a leak scanner
API_TOKEN_NAME_MAX_CHARS = 100
API_TOKEN_TOUCH_S = 3600  # `last_used_at` is written at most hourly: reads stay reads

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 "low memory") parameters


@cache
def _dummy_hash() -> str:
    """Checked against when no account has the email, so that "no such account" costs as
    long as "wrong password" and the timing does not tell which emails have accounts (made
    on first use: hashing at import would slow every command's start)."""
    return _hasher.hash("not a password anyone has")


@dataclass(frozen=True)
class AuthLimits:
    """How often one client address may try, and how often one account may fail — counted
    in the database, so that every instance of the app counts together."""

    per_client: RateLimit
    failures_per_account: RateLimit

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthLimits:
        """The limits the settings describe."""
        window_s = settings.auth_window_minutes * 60
        return cls(
            per_client=RateLimit("sign-ins per address", settings.auth_attempts_per_ip, window_s),
            failures_per_account=RateLimit(
                "failed log-ins per account", settings.login_failures_per_account, window_s
            ),
        )

    def count(self, session: Session, *, client: str, email: str | None = None) -> None:
        """Count an attempt from `client` (and on `email`'s account) in a transaction of its
        own — it counts even if the password turns out wrong — or refuse it if there were
        too many lately (TooManyRequests, nothing counted)."""
        begin_write(session)
        try:
            if (wait := self.per_client.take(session, client)) is not None:
                raise TooManyRequests(
                    f"Too many log-in and sign-up attempts from your address. "
                    f"Try again in {_minutes(wait)}.",
                    retry_after=wait,
                )
            if (
                email is not None
                and (wait := self.failures_per_account.take(session, email)) is not None
            ):
                raise TooManyRequests(
                    f"Too many failed log-ins to this account. Try again in {_minutes(wait)}.",
                    retry_after=wait,
                )
        except TooManyRequests:
            session.rollback()
            raise
        session.commit()

    def forgive(self, session: Session, *, client: str, email: str) -> None:
        """A right password: the account's failures are cleared, and the attempt is not held
        against the address. Inside the caller's write transaction."""
        self.failures_per_account.reset(session, email)
        self.per_client.give_back(session, client)


def _minutes(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def normalise_email(email: str) -> str:
    """An email as stored and compared: trimmed, Unicode-normalised (NFKC), lowercased."""
    return unicodedata.normalize("NFKC", email.strip()).lower()


def _checked_email(email: str) -> str:
    email = normalise_email(email)
    if not email:
        raise Invalid("Enter your email address.", field="email")
    if len(email) > EMAIL_MAX_CHARS or not EMAIL_SHAPE.fullmatch(email):
        raise Invalid("That does not look like an email address.", field="email")
    return email


def _checked_password(password: str) -> str:
    if len(password) < PASSWORD_MIN_CHARS:
        raise Invalid(
            f"Choose a password of at least {PASSWORD_MIN_CHARS} characters.", field="password"
        )
    if len(password) > PASSWORD_MAX_CHARS:
        raise Invalid(
            f"Passwords are limited to {PASSWORD_MAX_CHARS} characters.", field="password"
        )
    return password


def account_learner(session: Session, user: User) -> Learner | None:
    """The learner that holds an account's progress."""
    return session.scalar(select(Learner).where(Learner.user_id == user.id))


def new_session_token() -> str:
    """A fresh token naming an account's sessions."""
    return secrets.token_urlsafe(SESSION_TOKEN_BYTES)


def sign_up(
    session: Session,
    *,
    visitor: learners.Visitor,
    email: str,
    password: str,
    limits: AuthLimits,
    client: str,
) -> User:
    """Create an account; the visitor's guest progress becomes the account's."""
    limits.count(session, client=client)
    user = _add_user(session, email=email, password=password, role=LEARNER)
    guest = learners.get_learner(session, visitor.token) if visitor.user is None else None
    if guest is not None and guest.user_id is None and guest.merged_into_id is None:
        # The guest's own learner becomes the account's: what it did, and anything a request
        # still running for it does, is the account's. Its token names no guest any more.
        guest.user_id = user.id
    else:
        session.add(Learner(token=learners.new_token(), user_id=user.id))
    session.commit()
    return user


def log_in(
    session: Session,
    *,
    visitor: learners.Visitor,
    email: str,
    password: str,
    limits: AuthLimits,
    client: str,
) -> User:
    """Check the password and return the account; the visitor's guest progress moves into it."""
    email = normalise_email(email)
    if not email:
        raise Invalid("Enter your email address.", field="email")
    limits.count(session, client=client, email=email)
    user = session.scalar(select(User).where(User.email == email))
    end_read(session)  # argon2 takes a while: no connection is held meanwhile
    if not _password_matches(user.password_hash if user else _dummy_hash(), password) or not user:
        raise Invalid("Wrong email or password.", field="password")

    begin_write(session)
    limits.forgive(session, client=client, email=email)
    user = session.get(User, user.id, populate_existing=True)
    if user is None:  # deleted while the password was checked
        session.rollback()
        raise Invalid("Wrong email or password.", field="password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    target = account_learner(session, user)
    if target is None:
        target = Learner(token=learners.new_token(), user_id=user.id)
        session.add(target)
        session.flush()
    guest = learners.get_learner(session, visitor.token) if visitor.user is None else None
    if (
        guest is not None
        and guest.user_id is None
        and guest.merged_into_id is None
        and guest.id != target.id
    ):
        learners.merge(session, guest=guest, into=target)
    session.commit()
    return user


def log_out(session: Session, *, user: User) -> None:
    """End every session of the account (on every device): its session token changes."""
    begin_write(session)
    fresh = session.get(User, user.id, populate_existing=True)
    if fresh is not None:
        fresh.session_token = new_session_token()
    session.commit()


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password[: PASSWORD_MAX_CHARS + 1])
    except (VerificationError, InvalidHashError):
        return False


def is_staff(user: User | None) -> bool:
    """Whether the user may author questions and read statistics (instructors, admins)."""
    return user is not None and user.role in STAFF_ROLES


def create_user(session: Session, *, email: str, password: str, role: str) -> User:
    """Create an account with a role (the command line's way to make the first instructor
    or admin). Commits."""
    if role not in ROLES:
        raise Invalid(f"The role must be one of {', '.join(ROLES)}.", field="role")
    user = _add_user(session, email=email, password=password, role=role)
    session.add(Learner(token=learners.new_token(), user_id=user.id))
    audit.record(
        session, actor_id=None, action="user.create", subject=user.email, detail={"role": role}
    )
    session.commit()
    return user


def _add_user(session: Session, *, email: str, password: str, role: str) -> User:
    """Check the email and password and add the account, in a write transaction this opens
    (the caller adds its learner and commits). Invalid if the email is taken."""
    email = _checked_email(email)
    password_hash = _hasher.hash(_checked_password(password))  # slow: before the write lock
    begin_write(session)
    taken = Invalid("An account with this email already exists: log in instead.", field="email")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        session.rollback()
        raise taken
    user = User(
        email=email, password_hash=password_hash, role=role, session_token=new_session_token()
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # another server process took the email just now
        session.rollback()
        raise taken from None
    return user


def list_users(session: Session) -> list[User]:
    """Every account, staff first, then by email."""
    users = session.scalars(select(User).order_by(User.email)).all()
    return sorted(users, key=lambda user: -ROLES.index(user.role) if user.role in ROLES else 0)


def set_role(session: Session, *, actor: User, user_id: int, role: str) -> User:
    """An admin gives an account a role. An admin cannot demote themselves (so that there is
    always one admin left who can undo a mistake). Commits, with an audit record."""
    if role not in ROLES:
        raise Invalid(f"The role must be one of {', '.join(ROLES)}.", field="role")
    begin_write(session)
    user = session.get(User, user_id, populate_existing=True)
    if user is None:
        session.rollback()
        raise NotFound("There is no such account.")
    if user.id == actor.id and role != ADMIN:
        session.rollback()
        raise Forbidden("You cannot take away your own admin role; ask another admin.")
    if user.role != role:
        audit.record(
            session,
            actor_id=actor.id,
            action="role.grant",
            subject=user.email,
            detail={"from": user.role, "to": role},
        )
        user.role = role
        if role not in STAFF_ROLES:  # its API tokens end with the role, not merely pause
            session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.commit()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, *, user: User, name: str) -> tuple[ApiToken, str]:
    """A new personal API token for a staff account: the row, and the token itself (shown
    once: only its hash is kept). Commits, with an audit record."""
    if not is_staff(user):
        raise Forbidden("API tokens are for instructors.")
    name = name.strip()
    if not name:
        raise Invalid("Name the token (e.g. the script that will use it).", field="name")
    if len(name) > API_TOKEN_NAME_MAX_CHARS:
        raise Invalid(
            f"A token's name has at most {API_TOKEN_NAME_MAX_CHARS} characters.", field="name"
        )
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(API_TOKEN_BYTES)
    begin_write(session)
    row = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(token), prefix=token[:10])
    session.add(row)
    audit.record(session, actor_id=user.id, action="token.create", subject=name)
    session.commit()
    return row, token


def list_api_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """The user's API tokens, newest first."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return list(session.scalars(query))


def revoke_api_token(session: Session, *, user: User, token_id: int) -> None:
    """Delete one of the user's tokens (someone else's is NotFound). Commits."""
    begin_write(session)
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        session.rollback()
        raise NotFound("There is no such token.")
    session.delete(row)
    audit.record(session, actor_id=user.id, action="token.revoke", subject=row.name)
    session.commit()


def user_for_api_token(session: Session, token: str) -> User | None:
    """The account an API token belongs to, or None if no token is like it. Marks it used
    (at most hourly, in its own short write)."""
    found = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _token_hash(token))
    ).first()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(seconds=API_TOKEN_TOUCH_S):
        begin_write(session)
        fresh = session.get(ApiToken, row.id)
        if fresh is not None:
            fresh.last_used_at = now
        session.commit()
        session.refresh(user)
    return user
