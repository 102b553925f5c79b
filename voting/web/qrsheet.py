"""The printable QR sheet: cut-out cards, ten to an A4 or Letter page."""

from __future__ import annotations

from urllib.parse import urlsplit

import segno
from flask import render_template

from voting.links import path_for, voter_url
from voting.services.issuing import MintedBatch

CARDS_PER_PAGE = 10


def qr_svg(url: str) -> str:
    """An inline SVG QR code (medium error correction survives a crease).

    The mask is fixed: choosing the "best" of eight masks is four fifths of segno's time
    per code, and any mask scans; it keeps a sheet of 10,000 cards to seconds.
    """
    return str(segno.make(url, error="m", mask=0).svg_inline(scale=3, border=2, omitsize=True))


def render_sheet(batch: MintedBatch) -> str:
    """The HTML sheet for a minted batch, ready to print."""
    host = urlsplit(voter_url("x")).netloc
    # Where the card's short code is typed when its QR code will not scan.
    claim = host + path_for("claim.claim", slug=batch.poll.slug)
    cards = [
        {"svg": qr_svg(voter_url(t)), "n": i, "code": code}
        for i, (t, code) in enumerate(zip(batch.tokens, batch.codes, strict=True), start=1)
    ]
    pages = [cards[i : i + CARDS_PER_PAGE] for i in range(0, len(cards), CARDS_PER_PAGE)]
    return render_template(
        "qr_sheet.html", poll=batch.poll, pages=pages, claim=claim, batch=batch.batch
    )
