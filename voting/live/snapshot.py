"""What a stream sends: a poll's results documents, versioned, and their digests (pure)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

PUBLIC = "public"
ORGANIZER = "organizer"
OVERLAY = "overlay"
AUDIENCES = (PUBLIC, ORGANIZER, OVERLAY)


def poll_ident(poll: Any) -> str:
    """A poll's identity in the cache: its slug and its random seed's hash.

    A poll made again under the same slug (a restored database, a test) never reads the
    cache of the one before it.
    """
    return f"{poll.slug}.{poll.tie_seed_hash[:16]}"


@dataclass(frozen=True)
class Documents:
    """What the database says now: both audiences' results documents for one poll."""

    ident: str
    slug: str
    public: dict[str, Any]
    organizer: dict[str, Any]
    overlay_key_version: int
    # When the clock alone will change the documents (epoch seconds), if ever.
    next_change_at: float | None
    # The poll's row id, so a stream can check an overlay key without asking the database
    # (0 in a snapshot cached before this field existed: then the database is asked).
    poll_id: int = 0

    def digest(self) -> str:
        body = {k: v for k, v in asdict(self).items()}
        return hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """Documents under a version: what the cache holds and the streams send."""

    version: int
    digest: str
    docs: Documents
    # Each audience's (document digest, encoded tally event), filled by sse.tally_event once
    # per snapshot: a crowd of streams sends the same bytes, encoded once, not per viewer.
    encoded: dict[str, tuple[str, bytes]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def slug(self) -> str:
        return self.docs.slug

    @property
    def ident(self) -> str:
        return self.docs.ident

    def document(self, audience: str) -> dict[str, Any]:
        """The results JSON for this audience, plus the version."""
        doc = self.docs.organizer if audience == ORGANIZER else self.docs.public
        return {**doc, "version": self.version}

    def due(self, now: float | None = None) -> bool:
        """True when the clock has passed the moment these documents change by themselves."""
        at = self.docs.next_change_at
        return at is not None and (now or time.time()) >= at

    def to_json(self) -> str:
        return json.dumps(
            {"version": self.version, "digest": self.digest, "docs": asdict(self.docs)},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Snapshot:
        data = json.loads(raw)
        return cls(
            version=int(data["version"]), digest=data["digest"], docs=Documents(**data["docs"])
        )


class Source(Protocol):
    def __call__(self, slug: str) -> Documents | None: ...


def doc_digest(doc: dict[str, Any]) -> str:
    """One audience's document, versions aside: a stream sends it again only when this changes."""
    body = {k: v for k, v in doc.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
