"""The app's session cookie: Secure whenever the request came over HTTPS."""

from __future__ import annotations

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface


class SecureWhenHttpsSessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (or always, by setting).

    Behind a TLS-terminating proxy, VOTING_PROXY_HOPS makes request.is_secure true.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        return has_request_context() and request.is_secure


def install(app: Flask) -> None:
    """Use the HTTPS-aware session cookie for every blueprint of the app."""
    app.session_interface = SecureWhenHttpsSessionInterface()
