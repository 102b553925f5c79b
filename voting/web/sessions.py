"""The app's session cookie: Secure whenever the request came over HTTPS."""

from __future__ import annotations

from flask import Flask, Request, current_app, has_request_context, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user


class SecureWhenHttpsSessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (or always, by setting).

    Behind a TLS-terminating proxy, VOTING_PROXY_HOPS makes request.is_secure true.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """A request without the cookie gets a new, empty session without building the
        signing serializer (most requests: ballots, /healthz, the results JSON)."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        return has_request_context() and request.is_secure


def install(app: Flask) -> None:
    """Use the HTTPS-aware session cookie for every blueprint of the app."""
    app.session_interface = SecureWhenHttpsSessionInterface()


def organizer_signed_in() -> bool:
    """Is an organizer signed in on this request?

    Only the session cookie signs one in (the console never sets Flask-Login's remember
    cookie, voting.config), so without it nobody is, and neither the session nor the user
    is loaded: a hall refreshing the public results JSON sends none."""
    if not request.cookies.get(current_app.session_interface.get_cookie_name(current_app)):
        return False  # the same test as open_session's: no session to load
    return bool(getattr(current_user, "is_authenticated", False))
