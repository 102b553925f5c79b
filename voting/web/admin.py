"""The organizer console: everything the CLI does, from a browser, with every action audited.

Views parse forms and render; the services decide, commit and write the audit entry.
Every page needs a logged-in organizer (one before_request guards the whole blueprint, so
a new route cannot forget it); every form carries Flask-WTF's CSRF token. Dangerous steps
(open, close, reveal, rotating the overlay key, withdrawing, revoking a batch) are two
steps: a GET shows a page naming the consequence, and its form POSTs to the same address.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from voting.database import begin_write
from voting.domain.errors import InvalidRequest, NotFound, VotingError
from voting.domain.statuses import BEFORE_CLOSE, Eligibility, Method, PollStatus, ResultsMode
from voting.extensions import db, limiter, login_manager
from voting.links import public_url, voter_url
from voting.models import Organizer, Poll, utcnow
from voting.services import audit, exports, issuing, overlay, polls, projects, roster
from voting.services.organizers import check_password, hash_password
from voting.web.errors import wants_json
from voting.web.limits import address_key, login_username_key, setting
from voting.web.qrsheet import qr_svg, render_sheet

bp = Blueprint("admin", __name__, url_prefix="/admin")
login_manager.login_view = "admin.login"
login_manager.login_message = "Please log in to continue."

# Endpoints a visitor may reach without logging in.
OPEN_ENDPOINTS = frozenset({"admin.login"})
# Batch labels typed in the console end up in URLs and file names.
BATCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# A QR sheet renders one SVG per card; larger batches are printed from the CLI.
MAX_SHEET_CARDS = 5_000
CHART_WIDTH, CHART_HEIGHT = 640, 180
CHART_MIN_MINUTES, CHART_MAX_MINUTES = 15, 60

# Verified against when the username is unknown, so both paths cost one scrypt of the
# configured strength (keyed by method, since tests lower it).
_DUMMY_HASH: dict[str, str] = {}


# -- session, login and the guard -----------------------------------------------------------


@login_manager.user_loader
def load_organizer(user_id: str) -> Organizer | None:
    if not user_id.isdigit():
        return None
    return db.session.get(Organizer, int(user_id))


@login_manager.unauthorized_handler
def _unauthorized() -> ResponseReturnValue:
    if wants_json():
        return jsonify(error="unauthorized", message="Please log in first."), 401
    flash(login_manager.login_message, "info")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("admin.login", next=target), code=302)


@bp.before_request
def _require_login() -> ResponseReturnValue | None:
    if request.endpoint in OPEN_ENDPOINTS or current_user.is_authenticated:
        return None
    return login_manager.unauthorized()


@bp.after_request
def _console_headers(response: Response) -> Response:
    # Console pages hold live links and counts: never cache them, never frame them
    # (a framed page could trick a click on "Close voting").
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.errorhandler(VotingError)
def _refused(exc: VotingError) -> ResponseReturnValue:
    if wants_json():
        return jsonify(error=exc.code, message=exc.message), exc.status
    slug = (request.view_args or {}).get("slug")
    back = url_for("admin.poll", slug=slug) if slug else url_for("admin.dashboard")
    return render_template("admin/refused.html", message=exc.message, back=back), exc.status


def _actor() -> str:
    return str(current_user.username)


def _dummy_hash() -> str:
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASH:
        _DUMMY_HASH[method] = hash_password("not-a-real-password")
    return _DUMMY_HASH[method]


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the console: never another host, never a scheme-relative URL."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//") or "\\" in target:
        return None
    return target if parts.path.startswith("/admin/") or parts.path == "/admin" else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(setting("RATELIMIT_LOGIN_PER_IP"), key_func=address_key, methods=["POST"])
@limiter.limit(
    setting("RATELIMIT_LOGIN_PER_USERNAME"), key_func=login_username_key, methods=["POST"]
)
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        username = request.form.get("username", "")[:80]
        password = request.form.get("password", "")
        organizer = db.session.execute(
            select(Organizer).where(Organizer.username == username)
        ).scalar_one_or_none()
        if organizer is None:
            check_password(Organizer(password_hash=_dummy_hash()), password)
            ok = False
        else:
            ok = check_password(organizer, password)
        begin_write()
        audit.record(username or "(empty)", "login.success" if ok else "login.failure")
        db.session.commit()
        if ok and organizer is not None:
            target = _safe_next(request.args.get("next"))
            session.clear()  # nothing from before the login survives it
            login_user(organizer)
            return redirect(target or url_for("admin.dashboard"), code=303)
        error = "That username and password do not match."
    return render_template("admin/login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    begin_write()
    audit.record(_actor(), "logout")
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are logged out.", "ok")
    return redirect(url_for("admin.login"), code=303)


# -- time zones -----------------------------------------------------------------------------


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _tz_name() -> str:
    """The organizer's chosen zone (remembered from the poll form), else UTC."""
    name = session.get("tz")
    return name if isinstance(name, str) and _zone(name) else "UTC"


def _fmt_local(moment: datetime | None, seconds: bool = False) -> str:
    if moment is None:
        return ""
    zone = _zone(_tz_name()) or ZoneInfo("UTC")
    local = moment.astimezone(zone)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    return f"{local.strftime('%a %d %b %Y, ' + clock)} {local.tzname()}"


def _fmt_utc(moment: datetime | None, seconds: bool = False) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")) + " UTC"


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def _local_input(moment: datetime | None, zone_name: str) -> str:
    """A datetime-local input value in the given zone."""
    if moment is None:
        return ""
    zone = _zone(zone_name) or ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _parse_local(value: str | None, zone: ZoneInfo, label: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"The {label} time {value!r} is not a date and time.") from None
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _all_zones() -> list[str]:
    zones: list[str] | None = current_app.extensions.get("voting.admin_zones")
    if zones is None:
        zones = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
        current_app.extensions["voting.admin_zones"] = zones
    return zones


@bp.context_processor
def _console_helpers() -> dict[str, Any]:
    return {
        "admin_local": _fmt_local,
        "admin_utc": _fmt_utc,
        "admin_iso": _iso,
        "admin_tz": _tz_name,
        "admin_tz_chosen": lambda: bool(session.get("tz")),
    }


# -- dashboard ------------------------------------------------------------------------------


@dataclass
class ModeTotals:
    polls: int = 0
    issued: int = 0
    claimed: int = 0
    used: int = 0
    revoked: int = 0


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    rows = []
    modes = {mode: ModeTotals() for mode in Eligibility}
    for poll in polls.list_polls():
        stats = issuing.issuance_stats(poll)
        rows.append({"poll": poll, "status": polls.effective_status(poll), "stats": stats})
        totals = modes[poll.eligibility]
        totals.polls += 1
        totals.issued += stats.issued
        totals.claimed += stats.claimed
        totals.used += stats.used
        totals.revoked += stats.revoked
    return render_template(
        "admin/dashboard.html",
        rows=rows,
        modes=modes,
        project_count=len(projects.list_projects()),
    )


# -- creating and editing polls -------------------------------------------------------------


def _form_values(poll: Poll | None = None) -> dict[str, Any]:
    """The poll form's fields: from the submitted form, the poll, or the defaults."""
    tz = _tz_name()
    if request.method == "POST":
        form = request.form
        return {
            "slug": form.get("slug", ""),
            "title": form.get("title", ""),
            "description": form.get("description", ""),
            "method": form.get("method", Method.PLURALITY),
            "max_choices": form.get("max_choices", ""),
            "eligibility": form.get("eligibility", Eligibility.INVITE),
            "results_mode": form.get("results_mode", ResultsMode.HIDDEN),
            "allow_revote": form.get("allow_revote") == "1",
            "opens_at": form.get("opens_at", ""),
            "closes_at": form.get("closes_at", ""),
            "tz": form.get("tz", tz),
            "scope": form.get("scope", "all"),
            "categories": form.getlist("category"),
            "projects": form.getlist("project"),
        }
    if poll is None:
        return {
            "slug": "",
            "title": "",
            "description": "",
            "method": Method.PLURALITY,
            "max_choices": "",
            "eligibility": Eligibility.INVITE,
            "results_mode": ResultsMode.HIDDEN,
            "allow_revote": False,
            "opens_at": "",
            "closes_at": "",
            "tz": tz,
            "scope": "all",
            "categories": [],
            "projects": [],
        }
    active = [c.project.slug for c in poll.choices if not c.withdrawn]
    everything = {p.slug for p in projects.list_projects()}
    return {
        "slug": poll.slug,
        "title": poll.title,
        "description": poll.description,
        "method": poll.method,
        "max_choices": str(poll.max_choices) if poll.method == Method.APPROVAL else "",
        "eligibility": poll.eligibility,
        "results_mode": poll.results_mode,
        "allow_revote": poll.allow_revote,
        "opens_at": _local_input(poll.opens_at, tz),
        "closes_at": _local_input(poll.closes_at, tz),
        "tz": tz,
        "scope": "all" if set(active) == everything else "projects",
        "categories": [],
        "projects": active,
    }


def _spec_from_form(slug: str) -> polls.PollSpec:
    form = request.form
    tz_name = form.get("tz") or "UTC"
    zone = _zone(tz_name)
    if zone is None:
        raise InvalidRequest(f"{tz_name!r} is not a time zone this server knows.")
    method = form.get("method", Method.PLURALITY)
    max_choices = None
    raw_max = form.get("max_choices", "").strip()
    if method == Method.APPROVAL and raw_max:
        if not raw_max.isdigit():
            raise InvalidRequest("Max choices must be a whole number.")
        max_choices = int(raw_max)
    scope = form.get("scope", "all")
    categories: list[str] = form.getlist("category") if scope == "categories" else []
    chosen: list[str] = form.getlist("project") if scope == "projects" else []
    if scope == "categories" and not categories:
        raise InvalidRequest("Tick at least one category, or include all projects.")
    if scope == "projects" and not chosen:
        raise InvalidRequest("Tick at least one project, or include all projects.")
    spec = polls.PollSpec(
        slug=slug,
        title=form.get("title", ""),
        description=form.get("description", "").strip(),
        method=method,
        max_choices=max_choices,
        eligibility=form.get("eligibility", Eligibility.INVITE),
        results_mode=form.get("results_mode", ResultsMode.HIDDEN),
        allow_revote=form.get("allow_revote") == "1",
        categories=categories,
        projects=chosen,
        opens_at=_parse_local(form.get("opens_at"), zone, "opening"),
        closes_at=_parse_local(form.get("closes_at"), zone, "closing"),
    )
    session["tz"] = tz_name  # the zone the organizer works in, for showing times too
    return spec


def _render_poll_form(poll: Poll | None, error: str | None = None) -> ResponseReturnValue:
    return render_template(
        "admin/poll_form.html",
        poll=poll,
        values=_form_values(poll),
        error=error,
        zones=_all_zones(),
        methods=list(Method),
        eligibilities=list(Eligibility),
        results_modes=list(ResultsMode),
        categories=current_app.config["CATEGORIES"],
        all_projects=projects.list_projects(),
    ), 400 if error else 200


@bp.route("/polls/new", methods=["GET", "POST"])
def new_poll() -> ResponseReturnValue:
    if request.method == "GET":
        return _render_poll_form(None)
    slug = request.form.get("slug", "").strip().lower()
    try:
        if slug == "new":
            raise InvalidRequest("Pick another slug: 'new' is taken by the console itself.")
        spec = _spec_from_form(slug)
        poll = polls.create_poll(spec, actor=_actor())
    except VotingError as exc:
        return _render_poll_form(None, exc.message)
    flash(f"Created the draft poll {poll.title!r} with {len(poll.choices)} projects.", "ok")
    return redirect(url_for("admin.poll", slug=poll.slug), code=303)


@bp.route("/polls/<slug>/edit", methods=["GET", "POST"])
def edit_poll(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    status = polls.effective_status(poll)
    if status != PollStatus.DRAFT:
        flash(f"This poll is {status}; only a draft poll can be edited.", "error")
        return redirect(url_for("admin.poll", slug=slug), code=303)
    if request.method == "GET":
        return _render_poll_form(poll)
    try:
        polls.update_poll(slug, _spec_from_form(slug), actor=_actor())
    except VotingError as exc:
        return _render_poll_form(polls.get_poll(slug), exc.message)
    flash("Saved the poll's settings.", "ok")
    return redirect(url_for("admin.poll", slug=slug), code=303)


# -- the poll page and its live view --------------------------------------------------------


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    votes: int
    label: str


@dataclass
class Chart:
    bars: list[Bar] = field(default_factory=list)
    peak: int = 0
    top: int = 1
    total: int = 0
    minutes: int = 0
    first_label: str = ""
    last_label: str = ""
    description: str = ""
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    plot_left: int = 36
    plot_bottom: int = CHART_HEIGHT - 24


def ballot_chart(
    series: Iterable[tuple[datetime, int]],
    *,
    start: datetime | None,
    end: datetime,
    zone: ZoneInfo,
) -> Chart:
    """Bars of ballots per minute from start to end (15 to 60 minutes wide), zeros filled in."""
    end = end.replace(second=0, microsecond=0)
    earliest = end - timedelta(minutes=CHART_MAX_MINUTES - 1)
    latest_start = end - timedelta(minutes=CHART_MIN_MINUTES - 1)
    first = start.replace(second=0, microsecond=0) if start else latest_start
    first = min(max(first, earliest), latest_start)
    counts = {minute.astimezone(UTC): n for minute, n in series}
    minutes = int((end - first).total_seconds() // 60) + 1
    chart = Chart(minutes=minutes)
    slots = [first + timedelta(minutes=i) for i in range(minutes)]
    values = [counts.get(m, 0) for m in slots]
    chart.peak = max(values, default=0)
    chart.top = max(chart.peak, 1)
    chart.total = sum(values)
    plot_width = chart.width - chart.plot_left - 8
    plot_height = chart.plot_bottom - 12
    step = plot_width / minutes
    for i, (minute, votes) in enumerate(zip(slots, values, strict=True)):
        height = plot_height * votes / chart.top
        chart.bars.append(
            Bar(
                x=round(chart.plot_left + i * step + step * 0.1, 2),
                y=round(chart.plot_bottom - height, 2),
                width=round(step * 0.8, 2),
                height=round(height, 2),
                votes=votes,
                label=f"{minute.astimezone(zone):%H:%M}",
            )
        )
    chart.first_label = chart.bars[0].label if chart.bars else ""
    chart.last_label = chart.bars[-1].label if chart.bars else ""
    busiest = max(range(len(values)), key=lambda i: values[i]) if values else 0
    chart.description = (
        f"{chart.total} ballots in the {minutes} minutes from {chart.first_label} to "
        f"{chart.last_label}"
        + (
            f"; the busiest minute was {chart.bars[busiest].label} with {chart.peak}."
            if chart.peak
            else "."
        )
    )
    return chart


def _live_context(poll: Poll) -> dict[str, Any]:
    doc = polls.results_view(poll, organizer=True)
    status = doc["status"]
    now = utcnow()
    zone = _zone(_tz_name()) or ZoneInfo("UTC")
    end = now if status in BEFORE_CLOSE else (poll.closed_at or now)
    chart = ballot_chart(
        polls.ballots_per_minute(poll), start=poll.opened_at or poll.opens_at, end=end, zone=zone
    )
    results = doc.get("results") or []
    places = int(doc.get("places", 0))
    shown = (
        int(doc.get("reveal_step", 0))
        if status in (PollStatus.REVEALING, PollStatus.REVEALED)
        else 0
    )
    for index, row in enumerate(results):
        row["public"] = index >= places - shown
    return {
        "poll": poll,
        "doc": doc,
        "status": status,
        "chart": chart,
        "stats": issuing.issuance_stats(poll),
        "results": results,
        "places": places,
        "shown": shown,
        "top_votes": max((r["votes"] for r in results), default=0) or 1,
        "refresh_seconds": float(current_app.config["ADMIN_LIVE_REFRESH_SECONDS"]),
        "updated": f"{now.astimezone(zone):%H:%M:%S} {now.astimezone(zone).tzname()}",
    }


@dataclass
class LifecycleStep:
    endpoint: str
    label: str
    confirm: str
    consequences: list[str]
    danger: bool = True


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _access_phrase(poll: Poll) -> str:
    return {
        Eligibility.INVITE: "every issued voting link and QR card",
        Eligibility.ROSTER: "every attendee on the roster (by claiming their token)",
        Eligibility.OPEN: "every visitor's browser (one voting pass each)",
    }.get(poll.eligibility, "every issued token")


def lifecycle_steps(
    poll: Poll, status: PollStatus, turnout: int, shown: int
) -> list[LifecycleStep]:
    """The next lifecycle actions for this status, each with the consequences it names."""
    places = polls.active_choice_count(poll)
    remaining = max(0, places - shown)
    if status == PollStatus.DRAFT:
        return [
            LifecycleStep(
                "admin.lifecycle_open",
                "Open voting…",
                "Yes, open voting now",
                [
                    f"Voting starts now: {_access_phrase(poll)} can cast one ballot.",
                    "The tie-break seed's hash is published, and the poll's settings, schedule "
                    "and projects can no longer be edited.",
                    "An open poll cannot go back to draft.",
                ],
            )
        ]
    if status == PollStatus.OPEN:
        hidden = {
            ResultsMode.LIVE: "The public already sees the counts live.",
            ResultsMode.HIDDEN: "The public still sees only the turnout: the counts appear as you reveal them.",
            ResultsMode.SEALED: "The counts are unsealed for organizers; the public sees them only as you reveal them.",
        }[poll.results_mode]
        ballots = "ballot" if turnout == 1 else "ballots"
        return [
            LifecycleStep(
                "admin.lifecycle_close",
                "Close voting…",
                "Yes, close voting now",
                [
                    f"Voting stops now: no ballot is accepted after this, and the tally of "
                    f"{turnout} {ballots} is final.",
                    "A closed poll cannot be opened again.",
                    hidden,
                ],
            )
        ]
    if status not in (PollStatus.CLOSED, PollStatus.REVEALING) or remaining == 0:
        return []
    place = places - shown
    step_lines = [
        f"The {_ordinal(place)} place of {places} is shown to everyone: on the stream overlay, "
        "the public results page and the API."
    ]
    if place == 1:
        step_lines.append("This reveals the winner.")
    if shown == 0:
        step_lines.append("This starts the reveal and publishes the tie-break seed.")
    if poll.reveal_auto_seconds and status == PollStatus.REVEALING:
        step_lines.append("Auto-play stops; you continue one place at a time.")
    step_label = "Start the reveal…" if shown == 0 else "Reveal the next place…"
    if place == 1:
        step_label = "Reveal the winner…"
    steps = [
        LifecycleStep(
            "admin.lifecycle_step",
            step_label,
            "Yes, reveal the winner" if place == 1 else f"Yes, reveal the {_ordinal(place)} place",
            step_lines,
        ),
        LifecycleStep(
            "admin.lifecycle_auto",
            "Auto-play the reveal…",
            "Yes, start auto-play",
            [
                f"The remaining {remaining} places are shown one after another, last place "
                "first and the winner last, at the interval you choose, on the overlay, the "
                "results page and the API.",
                "You can take over with “Reveal the next place” at any time.",
            ],
        ),
        LifecycleStep(
            "admin.lifecycle_all",
            "Reveal everything…",
            "Yes, reveal all places and the winner",
            [
                f"All {remaining} remaining places, the winner included, are shown to everyone at once."
            ],
        ),
    ]
    return steps


def _poll_context(poll: Poll) -> dict[str, Any]:
    live = _live_context(poll)
    batches = exports.token_batches(poll)
    return {
        **live,
        "steps": lifecycle_steps(poll, live["status"], live["doc"]["turnout"], live["shown"]),
        "batches": batches,
        "overlay_url": overlay.overlay_url(poll),
        "ballot_url": public_url("public.ballot", slug=poll.slug),
        "results_url": public_url("public.results_page", slug=poll.slug),
        "claim_url": public_url("claim.claim", slug=poll.slug),
        "join_url": public_url("claim.join", slug=poll.slug),
        "choices": poll.choices,
    }


@bp.get("/polls/<slug>")
def poll(slug: str) -> ResponseReturnValue:
    return render_template("admin/poll.html", **_poll_context(polls.get_poll(slug)))


@bp.get("/polls/<slug>/live")
def live(slug: str) -> ResponseReturnValue:
    """The live section alone, for the page's script to swap in (stream event or timer)."""
    return render_template("admin/_live.html", **_live_context(polls.get_poll(slug)))


# -- lifecycle: a confirm page (GET) and the action (POST) at one address --------------------


def _lifecycle(slug: str, action: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    if request.method == "POST":
        actor = _actor()
        if action == "open":
            polls.open_poll(slug, actor=actor)
            flash("Voting is open.", "ok")
        elif action == "close":
            poll = polls.close_poll(slug, actor=actor)
            flash(f"Voting is closed with {polls.turnout(poll)} ballots.", "ok")
        elif action == "step":
            poll = polls.reveal(slug, actor=actor, step=True)
            flash(_reveal_message(poll), "ok")
        elif action == "auto":
            raw = request.form.get("seconds", "").strip()
            if not raw.isdigit() or not 1 <= int(raw) <= 600:
                raise InvalidRequest("Choose between 1 and 600 seconds per place.")
            polls.reveal(slug, actor=actor, auto_seconds=int(raw))
            flash(f"Auto-play started: one place every {int(raw)} seconds.", "ok")
        else:
            poll = polls.reveal(slug, actor=actor)
            flash(_reveal_message(poll), "ok")
        return redirect(url_for("admin.poll", slug=slug, _anchor="lifecycle"), code=303)

    live = _live_context(poll)
    steps = lifecycle_steps(poll, live["status"], live["doc"]["turnout"], live["shown"])
    step = next((s for s in steps if s.endpoint == f"admin.lifecycle_{action}"), None)
    if step is None:
        flash(f"Nothing to do: the poll is {live['status']}.", "info")
        return redirect(url_for("admin.poll", slug=slug), code=303)
    return render_template(
        "admin/confirm.html",
        poll=poll,
        heading=step.label.rstrip("…") + f": {poll.title}",
        consequences=step.consequences,
        confirm_label=step.confirm,
        action_url=url_for(step.endpoint, slug=slug),
        seconds=action == "auto",
        status=live["status"],
        turnout=live["doc"]["turnout"],
    )


def _reveal_message(poll: Poll) -> str:
    total = polls.active_choice_count(poll)
    if poll.reveal_step >= total:
        return "Every place is revealed, the winner included."
    return f"{poll.reveal_step} of {total} places are revealed."


for _action, _path in (
    ("open", "open"),
    ("close", "close"),
    ("step", "reveal/step"),
    ("auto", "reveal/auto"),
    ("all", "reveal/all"),
):
    bp.add_url_rule(
        f"/polls/<slug>/{_path}",
        endpoint=f"lifecycle_{_action}",
        view_func=_lifecycle,
        methods=["GET", "POST"],
        defaults={"action": _action},
    )


# -- other two-step actions: overlay key, withdrawing a project, revoking a batch -------------


@bp.route("/polls/<slug>/overlay/rotate", methods=["GET", "POST"])
def rotate_overlay(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    if request.method == "POST":
        overlay.rotate_overlay_key(poll, actor=_actor())
        flash("The overlay key is rotated: put the new overlay URL into OBS.", "ok")
        return redirect(url_for("admin.poll", slug=slug, _anchor="overlay"), code=303)
    return render_template(
        "admin/confirm.html",
        poll=poll,
        heading=f"Rotate the overlay key: {poll.title}",
        consequences=[
            "Every overlay URL handed out so far stops working at once, including the one "
            "in the stream's browser source.",
            "You get a new overlay URL to paste into OBS.",
        ],
        confirm_label="Yes, rotate the overlay key",
        action_url=url_for("admin.rotate_overlay", slug=slug),
    )


@bp.route("/polls/<slug>/projects/<project>/withdraw", methods=["GET", "POST"])
def withdraw(slug: str, project: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    item = projects.get_project(project)
    if request.method == "POST":
        polls.withdraw_project(slug, project, actor=_actor())
        flash(f"{item.title} is withdrawn from this poll.", "ok")
        return redirect(url_for("admin.poll", slug=slug, _anchor="projects"), code=303)
    return render_template(
        "admin/confirm.html",
        poll=poll,
        heading=f"Withdraw {item.title} from {poll.title}",
        consequences=[
            f"{item.title} disappears from the ballot, and the votes it has received are no "
            "longer counted.",
            "Voters who picked it keep their receipt; their ballot counts for nothing else.",
            "This cannot be undone once the poll is open.",
        ],
        confirm_label=f"Yes, withdraw {item.title}",
        action_url=url_for("admin.withdraw", slug=slug, project=project),
    )


def _batch_summary(poll: Poll, batch: str) -> exports.BatchSummary:
    for summary in exports.token_batches(poll):
        if summary.batch == batch:
            return summary
    raise NotFound(f"There is no batch {batch!r} in this poll.")


@bp.route("/polls/<slug>/batches/<batch>/revoke", methods=["GET", "POST"])
def revoke_batch(slug: str, batch: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    summary = _batch_summary(poll, batch)
    if request.method == "POST":
        count = issuing.revoke(slug, actor=_actor(), batch=batch)
        flash(f"Revoked {count} link(s) of batch {batch}.", "ok")
        return redirect(url_for("admin.poll", slug=slug, _anchor="tokens"), code=303)
    live_links = summary.issued - summary.revoked
    return render_template(
        "admin/confirm.html",
        poll=poll,
        heading=f"Revoke batch {batch}",
        consequences=[
            f"The {live_links} links and QR cards of this batch that still work stop working.",
            f"Ballots already cast with them ({summary.used}) stay counted.",
            "Revoked links cannot be restored; mint a new batch instead.",
        ],
        confirm_label=f"Yes, revoke batch {batch}",
        action_url=url_for("admin.revoke_batch", slug=slug, batch=batch),
    )


# -- tokens ---------------------------------------------------------------------------------


@bp.post("/polls/<slug>/tokens")
def mint(slug: str) -> ResponseReturnValue:
    raw = request.form.get("count", "").strip()
    label = request.form.get("batch", "").strip() or None
    if not raw.isdigit():
        raise InvalidRequest("Enter how many links to mint, as a whole number.")
    if label is not None and not BATCH_RE.match(label):
        raise InvalidRequest(
            "A batch label is up to 64 letters, digits, dots, dashes or underscores."
        )
    if label and _has_batch(slug, label):
        raise InvalidRequest(f"Batch {label!r} already exists; pick another label.")
    minted = issuing.mint_tokens(slug, int(raw), actor=_actor(), batch=label)
    flash(
        f"Minted {len(minted.tokens)} voting links in batch {minted.batch}. "
        "Download the CSV or open the QR sheet now.",
        "ok",
    )
    return redirect(url_for("admin.batch", slug=slug, batch=minted.batch), code=303)


def _has_batch(slug: str, label: str) -> bool:
    return any(b.batch == label for b in exports.token_batches(polls.get_poll(slug)))


@bp.get("/polls/<slug>/batches/<batch>")
def batch(slug: str, batch: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    return render_template(
        "admin/batch.html",
        poll=poll,
        summary=_batch_summary(poll, batch),
        max_sheet=MAX_SHEET_CARDS,
    )


def _file_name(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts)


@bp.post("/polls/<slug>/batches/<batch>/csv")
def batch_csv(slug: str, batch: str) -> ResponseReturnValue:
    minted = exports.batch_tokens(slug, batch, actor=_actor(), purpose="csv")
    response = make_response(minted.csv_text())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{_file_name(slug, batch)}.csv"'
    )
    return response


@bp.post("/polls/<slug>/batches/<batch>/sheet")
def batch_sheet(slug: str, batch: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    summary = _batch_summary(poll, batch)
    if summary.issued - summary.revoked > MAX_SHEET_CARDS:
        raise InvalidRequest(
            f"This batch is too large to print from the console (over {MAX_SHEET_CARDS:,} "
            "cards): use `voting tokens mint --qr-sheet` in smaller batches."
        )
    minted = exports.batch_tokens(slug, batch, actor=_actor(), purpose="qr-sheet")
    return render_sheet(minted)


@bp.post("/polls/<slug>/tokens/revoke")
def revoke_tokens(slug: str) -> ResponseReturnValue:
    lines = [line.strip() for line in request.form.get("tokens", "").splitlines()]
    tokens = [line for line in lines if line]
    if not tokens:
        raise InvalidRequest("Paste at least one voting link or token, one per line.")
    count = issuing.revoke(slug, actor=_actor(), tokens=tokens)
    flash(f"Revoked {count} link(s); {len(tokens) - count} were already revoked.", "ok")
    return redirect(url_for("admin.poll", slug=slug, _anchor="tokens"), code=303)


@bp.post("/polls/<slug>/tokens/reissue")
def reissue(slug: str) -> ResponseReturnValue:
    lost = request.form.get("lost", "").strip()
    if not lost:
        raise InvalidRequest("Paste the lost card's voting link or token.")
    minted = issuing.reissue(slug, lost, actor=_actor())
    url = voter_url(minted.tokens[0])
    return render_template("admin/reissued.html", poll=minted.poll, url=url, qr=qr_svg(url))


# -- uploads with a preview: projects and rosters ------------------------------------------


def _upload() -> tuple[bytes, str]:
    """The uploaded file, or the bytes a preview page carried back for the real import."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return upload.read(), upload.filename
    encoded = request.form.get("data", "")
    if not encoded:
        raise InvalidRequest("Choose a file to upload.")
    try:
        data = base64.b64decode(encoded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidRequest("The upload was damaged on the way; choose the file again.") from None
    return data, request.form.get("filename", "")[:200]


def _carry(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


@bp.get("/projects")
def project_list() -> ResponseReturnValue:
    return render_template("admin/projects.html", projects=projects.list_projects(), error=None)


@bp.post("/projects/import")
def import_projects() -> ResponseReturnValue:
    try:
        data, filename = _upload()
        commit = request.form.get("commit") == "1"
        report = projects.import_projects(data, filename, actor=_actor(), dry_run=not commit)
    except VotingError as exc:
        return render_template(
            "admin/projects.html", projects=projects.list_projects(), error=exc.message
        ), 400
    if commit:
        flash(
            f"Imported {filename}: {len(report.created)} created, {len(report.updated)} "
            f"updated, {len(report.unchanged)} unchanged, {len(report.rejected)} rejected.",
            "ok",
        )
        return redirect(url_for("admin.project_list"), code=303)
    return render_template(
        "admin/import_preview.html",
        report=report,
        filename=filename,
        data=_carry(data),
        good=len(report.created) + len(report.updated),
    )


_PROJECT_FIELDS = projects.EDITABLE


@bp.route("/projects/<project>/edit", methods=["GET", "POST"])
def edit_project(project: str) -> ResponseReturnValue:
    item = projects.get_project(project)
    error = None
    values: Mapping[str, Any] = {name: getattr(item, name) or "" for name in _PROJECT_FIELDS}
    if request.method == "POST":
        values = {**values, **{k: v for k, v in request.form.items() if k in _PROJECT_FIELDS}}
        try:
            changed = projects.update_project(project, values, actor=_actor())
        except VotingError as exc:
            error = exc.message
        else:
            what = ", ".join(c.replace("_", " ") for c in changed) or "nothing changed"
            flash(f"Saved {item.slug}: {what}.", "ok")
            return redirect(url_for("admin.project_list"), code=303)
    return render_template(
        "admin/project_form.html",
        project=item,
        values=values,
        error=error,
        categories=current_app.config["CATEGORIES"],
        themes=current_app.config["THEMES"],
    ), 400 if error else 200


@bp.post("/polls/<slug>/roster")
def import_roster(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    data, filename = _upload()
    commit = request.form.get("commit") == "1"
    report = roster.import_roster(slug, data, actor=_actor(), dry_run=not commit)
    if commit:
        flash(
            f"Imported the roster {filename}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.rejected)} rejected.",
            "ok",
        )
        return redirect(url_for("admin.poll", slug=slug, _anchor="tokens"), code=303)
    return render_template(
        "admin/roster_preview.html",
        poll=poll,
        report=report,
        filename=filename,
        data=_carry(data),
        good=report.added + report.updated,
    )


# -- exports and the audit log --------------------------------------------------------------


@bp.post("/polls/<slug>/export.json")
def export_json(slug: str) -> ResponseReturnValue:
    doc = exports.export_poll(slug, actor=_actor())
    response = make_response(json.dumps(doc, indent=2, ensure_ascii=False))
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{slug}-export.json"'
    return response


@bp.post("/polls/<slug>/results.csv")
def export_csv(slug: str) -> ResponseReturnValue:
    # A byte-order mark so spreadsheet programs read the titles as UTF-8.
    text = "\ufeff" + exports.results_csv(slug, actor=_actor())
    response = make_response(text)
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{slug}-results.csv"'
    return response


AUDIT_PAGE = 500


@bp.get("/audit")
def audit_log() -> ResponseReturnValue:
    entries = audit.all_entries()
    problems = audit.verify_chain(entries)
    poll_filter = request.args.get("poll") or None
    shown = [e for e in entries if poll_filter is None or e["poll"] == poll_filter]
    shown.reverse()
    for entry in shown:
        entry["moment"] = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
        try:
            detail = json.loads(entry["detail"])
        except ValueError:
            detail = entry["detail"]
        entry["detail_text"] = (
            ", ".join(f"{k}: {v}" for k, v in detail.items())
            if isinstance(detail, dict)
            else str(detail)
        )
    return render_template(
        "admin/audit.html",
        entries=shown[:AUDIT_PAGE],
        total=len(shown),
        chain_length=len(entries),
        problems=problems,
        poll_filter=poll_filter,
        page_size=AUDIT_PAGE,
    )


@bp.post("/audit/verify-export")
def verify_export() -> ResponseReturnValue:
    """`voting verify` from the browser: recount an export file and walk its chain.

    A pure computation on the uploaded file; nothing is written, so nothing is audited.
    """
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidRequest("Choose an export file (the JSON from “Download the full export”).")
    try:
        doc = json.loads(upload.read().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(f"{upload.filename} is not a JSON export.") from None
    problems = exports.verify_export(doc) if isinstance(doc, dict) else ["not a JSON object"]
    return render_template(
        "admin/verify_result.html",
        filename=upload.filename,
        problems=problems,
        ballots=len(doc.get("ballots") or []) if isinstance(doc, dict) else 0,
        entries=len(doc.get("audit") or []) if isinstance(doc, dict) else 0,
        poll=(doc.get("poll") or {}).get("slug") if isinstance(doc, dict) else None,
    ), 200 if not problems else 422
