"""Opening, closing and revealing: two steps each, the first naming what the second does."""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from voting.domain.errors import InvalidRequest
from voting.domain.statuses import Eligibility, PollStatus, ResultsMode
from voting.models import Poll
from voting.services import polls
from voting.web.admin.blueprint import actor, bp
from voting.web.admin.forms import AutoRevealForm
from voting.web.admin.live import live_context

# Each action: a confirm page (GET) and the action itself (POST) at one address.
ACTIONS = (
    ("open", "/polls/<slug>/open"),
    ("close", "/polls/<slug>/close"),
    ("step", "/polls/<slug>/reveal/step"),
    ("auto", "/polls/<slug>/reveal/auto"),
    ("all", "/polls/<slug>/reveal/all"),
)


@dataclass
class LifecycleStep:
    """A next action on the poll page, with the consequences its confirm page names."""

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


def _reveal_message(poll: Poll) -> str:
    total = polls.active_choice_count(poll)
    if poll.reveal_step >= total:
        return "Every place is revealed, the winner included."
    return f"{poll.reveal_step} of {total} places are revealed."


def _act(slug: str, action: str) -> None:
    """Do the action and flash what it did."""
    if action == "open":
        polls.open_poll(slug, actor=actor())
        flash("Voting is open.", "ok")
    elif action == "close":
        poll = polls.close_poll(slug, actor=actor())
        flash(f"Voting is closed with {polls.turnout(poll)} ballots.", "ok")
    elif action == "step":
        poll = polls.reveal(slug, actor=actor(), step=True)
        flash(_reveal_message(poll), "ok")
    elif action == "auto":
        form = AutoRevealForm()
        if not form.validate():
            raise InvalidRequest(form.first_error())
        seconds = int(form.seconds.data)
        polls.reveal(slug, actor=actor(), auto_seconds=seconds)
        flash(f"Auto-play started: one place every {seconds} seconds.", "ok")
    else:
        poll = polls.reveal(slug, actor=actor())
        flash(_reveal_message(poll), "ok")


def _lifecycle(slug: str, action: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    if request.method == "POST":
        _act(slug, action)
        # No #lifecycle: the page's top holds the message saying what just happened.
        return redirect(url_for("admin.poll", slug=slug), code=303)

    live = live_context(poll)
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


for _action, _rule in ACTIONS:
    bp.add_url_rule(
        _rule,
        endpoint=f"lifecycle_{_action}",
        view_func=_lifecycle,
        methods=["GET", "POST"],
        defaults={"action": _action},
    )
