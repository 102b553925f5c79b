"""Voting links: minting batches, their CSV and QR sheet, revoking, reissuing; overlay and withdraw."""

from __future__ import annotations

import re

from flask import flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from voting.domain.errors import InvalidRequest, NotFound
from voting.links import voter_url
from voting.models import Poll
from voting.services import exports, issuing, overlay, polls, projects
from voting.web.admin.blueprint import actor, bp
from voting.web.admin.forms import MintForm, ReissueForm, RevokeTokensForm
from voting.web.qrsheet import qr_svg, render_sheet

# A QR sheet renders one SVG per card; larger batches are printed from the CLI.
MAX_SHEET_CARDS = 5_000


def _batch_summary(poll: Poll, batch: str) -> exports.BatchSummary:
    for summary in exports.token_batches(poll):
        if summary.batch == batch:
            return summary
    raise NotFound(f"There is no batch {batch!r} in this poll.")


def _has_batch(slug: str, label: str) -> bool:
    return any(b.batch == label for b in exports.token_batches(polls.get_poll(slug)))


def _file_name(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts)


@bp.post("/polls/<slug>/tokens")
def mint(slug: str) -> ResponseReturnValue:
    form = MintForm()
    if not form.validate():
        raise InvalidRequest(form.first_error())
    label = form.label()
    if label and _has_batch(slug, label):
        raise InvalidRequest(f"Batch {label!r} already exists; pick another label.")
    minted = issuing.mint_tokens(slug, int(form.count.data), actor=actor(), batch=label)
    flash(
        f"Minted {len(minted.tokens)} voting links in batch {minted.batch}. "
        "Download the CSV or open the QR sheet now.",
        "ok",
    )
    return redirect(url_for("admin.batch", slug=slug, batch=minted.batch), code=303)


@bp.get("/polls/<slug>/batches/<batch>")
def batch(slug: str, batch: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    return render_template(
        "admin/batch.html",
        poll=poll,
        summary=_batch_summary(poll, batch),
        max_sheet=MAX_SHEET_CARDS,
    )


@bp.post("/polls/<slug>/batches/<batch>/csv")
def batch_csv(slug: str, batch: str) -> ResponseReturnValue:
    minted = exports.batch_tokens(slug, batch, actor=actor(), purpose="csv")
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
    minted = exports.batch_tokens(slug, batch, actor=actor(), purpose="qr-sheet")
    return render_sheet(minted)


@bp.route("/polls/<slug>/batches/<batch>/revoke", methods=["GET", "POST"])
def revoke_batch(slug: str, batch: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    summary = _batch_summary(poll, batch)
    if request.method == "POST":
        count = issuing.revoke(slug, actor=actor(), batch=batch)
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


@bp.post("/polls/<slug>/tokens/revoke")
def revoke_tokens(slug: str) -> ResponseReturnValue:
    form = RevokeTokensForm()
    if not form.validate():
        raise InvalidRequest(form.first_error())
    tokens = form.pasted()
    count = issuing.revoke(slug, actor=actor(), tokens=tokens)
    flash(f"Revoked {count} link(s); {len(tokens) - count} were already revoked.", "ok")
    return redirect(url_for("admin.poll", slug=slug, _anchor="tokens"), code=303)


@bp.post("/polls/<slug>/tokens/reissue")
def reissue(slug: str) -> ResponseReturnValue:
    form = ReissueForm()
    if not form.validate():
        raise InvalidRequest(form.first_error())
    minted = issuing.reissue(slug, form.lost.data, actor=actor())
    url = voter_url(minted.tokens[0])
    return render_template("admin/reissued.html", poll=minted.poll, url=url, qr=qr_svg(url))


@bp.route("/polls/<slug>/overlay/rotate", methods=["GET", "POST"])
def rotate_overlay(slug: str) -> ResponseReturnValue:
    poll = polls.get_poll(slug)
    if request.method == "POST":
        overlay.rotate_overlay_key(poll, actor=actor())
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
        polls.withdraw_project(slug, project, actor=actor())
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
