"""The public receipt board: its page (search and pages without JavaScript) and its CSV."""

from __future__ import annotations

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from voting.services import polls, receipts
from voting.services.polls.fingerprint import published_fingerprint
from voting.web.public.blueprint import bp


@bp.get("/p/<slug>/receipts")
def receipt_board(slug: str) -> ResponseReturnValue:
    """Every counted ballot's receipt and choices once published; a search form; pages."""
    poll = polls.get_poll(slug)
    publication = receipts.publication(poll)
    code, problem = 200, None
    try:
        page = receipts.board_page(poll, receipts.page_number(request.args.get("page")))
    except receipts.BadPageNumber:
        code, problem = 400, _("The page number must be a whole number, 1 or more.")
        page = receipts.board_page(poll, 1)
    except receipts.NoSuchPage as exc:
        code, problem = 404, _("There is no page %(page)d on this board.", page=exc.page)
        page = receipts.board_page(poll, 1)
    typed = request.args.get("q", "").strip()
    searched, found, search_problem = None, None, None
    if typed:
        try:
            searched, found = receipts.find(poll, typed)
        except receipts.NotAReceipt:
            code = 400
            search_problem = _(
                "That is not a receipt code: it has 12 letters and digits, like 7KQ2-M9XD-4TBR."
            )
    body = render_template(
        "receipts.html",
        poll=poll,
        publication=publication,
        page=page,
        titles={c.project.slug: c.project.title for c in poll.choices},
        problem=problem,
        typed=typed,
        searched=searched,
        found=found,
        search_problem=search_problem,
        fingerprint=published_fingerprint(poll, polls.effective_status(poll)),
    )
    return Response(body, status=code, mimetype="text/html")


@bp.get("/p/<slug>/receipts.csv")
def receipt_board_csv(slug: str) -> ResponseReturnValue:
    """The board as CSV (receipt,choices,status); only the header until it is published."""
    poll = polls.get_poll(slug)
    response = Response(receipts.csv_text(poll), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{poll.slug}-receipts.csv"'
    return response
