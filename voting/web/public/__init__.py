"""Pages for attendees: home, voter link landing, ballot, project detail, confirm, receipt.

Plain HTML forms do everything; static/app.js only adds instant filtering and small
comforts. Each state of a poll, as this visitor sees it, has its own page: not yet open,
open (with or without a voting link), already voted, closed (visitor.PageState).
Importing the package attaches every page (ballot, pages, receipts) to its blueprint.
"""

from voting.web.public import ballot, pages, receipts
from voting.web.public.blueprint import bp

__all__ = ["ballot", "bp", "pages", "receipts"]
