"""The one security-header policy: which headers every answer carries, by the route it came from.

One after-request hook applies it to every response. Each route's policy is looked up by
its endpoint, then its blueprint; `policy_for` refuses a route that is in neither table,
and a test walks `app.url_map` with it, so a new page cannot be left out silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from voting.web.public.gallery import EMBED_HOSTS


def _csp(*, style: str = "'self'", frames: str = "'none'", framed_by: str = "'none'") -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "img-src 'self' data:",
            "script-src 'self'",
            f"style-src {style}",
            f"frame-src {frames}",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {framed_by}",
            "object-src 'none'",
        ]
    )


# Pages for attendees: nothing loads from another host but the project videos' players.
PAGE_CSP = _csp(frames=" ".join(EMBED_HOSTS))
# The console: inline style widths (its live tally, the QR sheet's print styles).
CONSOLE_CSP = _csp(style="'self' 'unsafe-inline'", frames=" ".join(EMBED_HOSTS))
# The overlay is the one page others may frame: OBS and web studios embed it.
OVERLAY_CSP = _csp(framed_by="*")
# Anything that is not a page (JSON, streams, CSV, static files): it loads nothing.
NOT_A_PAGE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

# Every answer, whatever its route; a policy may replace a value, or drop it with None.
BASELINE: Mapping[str, str | None] = {
    "Content-Security-Policy": NOT_A_PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Nothing here uses a device or sensor; the project videos keep fullscreen and autoplay.
    "Permissions-Policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=(), browsing-topics=()"
    ),
}


@dataclass(frozen=True)
class Policy:
    """Headers for one kind of answer: `always` on every answer, `html` on HTML ones too."""

    name: str
    always: Mapping[str, str | None] = field(default_factory=dict)
    html: Mapping[str, str | None] = field(default_factory=dict)

    def headers(self, mimetype: str | None) -> dict[str, str | None]:
        """The headers for an answer of this mimetype, the baseline included."""
        found = {**BASELINE, **self.always}
        if mimetype == "text/html":
            found.update(self.html)
        return found


PAGE = Policy("page", html={"Content-Security-Policy": PAGE_CSP})
# The results page: the attendee pages' policy (its bars are <meter>s, no inline style).
RESULTS_PAGE = Policy("results page", html={"Content-Security-Policy": PAGE_CSP})
# The answer sets or reads a voter token (cookie or /v/ link): never cached, and the
# address it came from is never sent onward.
TOKEN_PAGE = Policy(
    "token page",
    always={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    html={"Content-Security-Policy": PAGE_CSP},
)
# A receipt is this voter's alone.
PRIVATE_PAGE = Policy(
    "private page",
    always={"Cache-Control": "no-store"},
    html={"Content-Security-Policy": PAGE_CSP},
)
# Console pages hold live links and counts: never cache them, never frame them (a framed
# page could trick a click on "Close voting").
CONSOLE = Policy(
    "console",
    always={"Cache-Control": "no-store"},
    html={"Content-Security-Policy": CONSOLE_CSP},
)
# The overlay's key is in its address: it must not leak onward or into caches. It is the
# one page that may be framed (CSP frame-ancestors *, and no X-Frame-Options).
OVERLAY = Policy(
    "overlay",
    always={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": None},
    html={"Content-Security-Policy": OVERLAY_CSP},
)
# An event stream: never cached or transformed, and not buffered by nginx.
STREAM = Policy(
    "stream",
    always={
        "Cache-Control": "no-cache, no-store, no-transform",
        "X-Accel-Buffering": "no",
        "Vary": "Cookie",
    },
)
# JSON, health checks and static files: the baseline (and a page's CSP on an HTML error page).
PLAIN = Policy("plain", html={"Content-Security-Policy": PAGE_CSP})

BY_ENDPOINT: Mapping[str, Policy] = {
    "public.voter_link": TOKEN_PAGE,
    "claim.claim": TOKEN_PAGE,
    "claim.join": TOKEN_PAGE,
    "public.receipt": PRIVATE_PAGE,
    "public.results_page": RESULTS_PAGE,
    "overlay.show": OVERLAY,
    "stream.events": STREAM,
    "static": PLAIN,
}
BY_BLUEPRINT: Mapping[str, Policy] = {
    "public": PAGE,
    "claim": PAGE,
    "admin": CONSOLE,
    "api": PLAIN,
    "health": PLAIN,
}


class UnlistedRoute(LookupError):
    """A route that the policy does not name: add its endpoint or blueprint above."""


def policy_for(endpoint: str) -> Policy:
    """The policy of a route, by endpoint, then blueprint."""
    if endpoint in BY_ENDPOINT:
        return BY_ENDPOINT[endpoint]
    blueprint = endpoint.rpartition(".")[0]
    if blueprint in BY_BLUEPRINT:
        return BY_BLUEPRINT[blueprint]
    raise UnlistedRoute(f"no security-header policy for the route {endpoint!r}")


def _apply(response: Response) -> Response:
    # An answer with no route (a 404, a 405) is a page like any other.
    policy = policy_for(request.endpoint) if request.endpoint else PAGE
    for name, value in policy.headers(response.mimetype).items():
        if value is None:
            response.headers.pop(name, None)
        else:
            response.headers[name] = value
    # HTTPS only (behind a proxy, as VOTING_PROXY_HOPS lets ProxyFix tell): on plain HTTP a
    # browser ignores it, and a spoofed X-Forwarded-Proto without trusted hops changes nothing.
    seconds = current_app.config["HSTS_SECONDS"]
    if request.is_secure and seconds:
        response.headers["Strict-Transport-Security"] = f"max-age={int(seconds)}"
    return response


def init_app(app: Flask) -> None:
    """Apply the policy to every answer; call after the blueprints are registered.

    A route without a policy stops the app from starting (UnlistedRoute), so it is found
    by the first test that builds the app, never by a visitor.
    """
    for rule in app.url_map.iter_rules():
        policy_for(rule.endpoint)
    app.after_request(_apply)
