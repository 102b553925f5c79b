"""Reading submission files (our CSV/JSON columns or Devpost's export) into checked rows."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from voting.domain.errors import InvalidRequest

OWN_COLUMNS = (
    "slug",
    "title",
    "team",
    "members",
    "category",
    "theme",
    "summary",
    "description",
    "repo_url",
    "demo_url",
    "image_url",
    "built_with",
)
LIMITS = {"slug": 80, "title": 200, "team": 200, "category": 80, "theme": 120, "summary": 300}
URL_FIELDS = ("repo_url", "demo_url", "image_url")
URL_LIMIT = 500
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DEVPOST_TITLE = "Project Title"


@dataclass
class Rejected:
    line: int
    reason: str
    title: str = ""


@dataclass
class Row:
    line: int
    values: dict[str, str]
    member_emails: list[str] = field(default_factory=list)


class RowError(ValueError):
    """One row cannot be imported; the message says why."""


def slugify(text: str) -> str:
    """A URL slug from a title: ASCII, lowercase, words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80].strip("-")
    if not slug:
        slug = "project-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return slug


def _fold(value: str) -> str:
    return re.sub(r"\s+", "", value).casefold()


def match_choice(value: str, allowed: Sequence[str], what: str) -> str:
    """The configured spelling of value, ignoring case and spacing; RowError otherwise."""
    wanted = _fold(value)
    for option in allowed:
        if _fold(option) == wanted:
            return option
    shown = value if value.strip() else "(empty)"
    raise RowError(f"unknown {what} {shown!r}; valid values are: {', '.join(allowed)}")


def _check_url(name: str, value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise RowError(
            f"{name} {value!r} is not a web address (it must start with http:// or https://)"
        )
    if len(value) > URL_LIMIT:
        raise RowError(f"{name} is longer than {URL_LIMIT} characters")
    return value


def _has_bad_bytes(values: Iterable[str]) -> bool:
    # Bytes that are not UTF-8 were decoded as lone surrogates (errors="surrogateescape").
    return any(re.search("[\udc80-\udcff]", v) for v in values)


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="surrogateescape")


def _csv_rows(text: str) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    start = reader.line_num + 1
    for record in reader:
        line = start
        start = reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header):
            yield line, {"__error__": f"has {len(record)} fields but the header has {len(header)}"}
            continue
        yield line, {h: record[i] if i < len(record) else "" for i, h in enumerate(header)}


def _devpost_category(row: Mapping[str, str]) -> str:
    for prize in row.get("Opt-In Prizes", "").split(","):
        prize = prize.strip()
        if prize.casefold().endswith(" category"):
            return prize[: -len(" category")]
    found = re.search(r"Category:\s*([^.\n]+)", row.get("About The Project", ""))
    return found.group(1).strip() if found else ""


def _first_sentence(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _from_devpost(line: int, raw: Mapping[str, str]) -> Row:
    about = raw.get("About The Project", "")
    links = [u.strip() for u in raw.get('"Try it out" Links', "").split(",") if u.strip()]
    repo = next((u for u in links if "github.com" in u or "gitlab" in u), links[0] if links else "")
    theme = raw.get("Theme", "")
    if not theme:
        found = re.search(r"Theme:\s*([^.\n]+)", about)
        theme = found.group(1).strip() if found else ""
    names: list[str] = []
    emails: list[str] = []
    n = 1
    while f"Team Member {n} First Name" in raw or f"Team Member {n} Email" in raw:
        first = raw.get(f"Team Member {n} First Name", "").strip()
        last = raw.get(f"Team Member {n} Last Name", "").strip()
        email = raw.get(f"Team Member {n} Email", "").strip()
        if first or last:
            names.append(f"{first} {last}".strip())
        if email:
            emails.append(email)
        n += 1
    firsts = [name.split()[0] for name in names]
    values = {
        "slug": "",
        "title": raw.get(DEVPOST_TITLE, ""),
        "team": " & ".join(firsts),
        "members": "; ".join(names),
        "category": _devpost_category(raw),
        "theme": theme,
        "summary": _first_sentence(about),
        "description": about,
        "repo_url": repo,
        "demo_url": raw.get("Video Demo Link", ""),
        "image_url": "",
        "built_with": raw.get("Built With", ""),
    }
    return Row(line=line, values=values, member_emails=emails)


def clean(row: Row, categories: Sequence[str], themes: Sequence[str]) -> Row:
    """The row checked and normalised against the configured categories and themes."""
    values = {k: (row.values.get(k) or "") for k in OWN_COLUMNS}
    if _has_bad_bytes([*values.values(), *row.member_emails]):
        raise RowError(
            "contains bytes that are not UTF-8 text; save the file as UTF-8 and import again"
        )
    values["title"] = values["title"].strip()
    if not values["title"]:
        raise RowError("the title is missing")
    slug = values["slug"].strip() or slugify(values["title"])
    if not SLUG_RE.match(slug):
        raise RowError(f"slug {slug!r} may hold only lowercase letters, digits and single hyphens")
    values["slug"] = slug
    values["category"] = match_choice(values["category"], categories, "category")
    if values["theme"].strip():
        values["theme"] = match_choice(values["theme"], themes, "theme")
    for name in URL_FIELDS:
        values[name] = _check_url(name, values[name])
    for name, limit in LIMITS.items():
        if len(values[name]) > limit:
            raise RowError(f"{name} is longer than {limit} characters")
    for email in row.member_emails:
        if "@" not in email:
            raise RowError(f"team member email {email!r} is not an email address")
    return Row(line=row.line, values=values, member_emails=row.member_emails)


def parse(data: bytes, filename: str = "") -> tuple[str, list[Row], list[Rejected]]:
    """Read a CSV or JSON file into candidate rows and rows already known to be broken."""
    text = _decode(data)
    stripped = text.lstrip()
    rows: list[Row] = []
    rejected: list[Rejected] = []
    if filename.lower().endswith(".json") or stripped.startswith(("[", "{")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(
                f"The file is not valid JSON: {exc.msg} at line {exc.lineno}."
            ) from exc
        except (ValueError, RecursionError) as exc:  # a number too long, nesting too deep
            raise InvalidRequest("The file is not JSON this service can read: " + str(exc)) from exc
        items = doc.get("projects") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise InvalidRequest('The JSON must be a list of projects, or {"projects": [...]}.')
        for n, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                rejected.append(Rejected(line=n, reason="is not an object with project fields"))
                continue
            values = {k: "" if item.get(k) is None else str(item.get(k)) for k in OWN_COLUMNS}
            if isinstance(item.get("members"), list):
                values["members"] = "; ".join(str(m) for m in item["members"])
            emails = item.get("member_emails") or []
            rows.append(Row(line=n, values=values, member_emails=[str(e) for e in emails]))
        return "json", rows, rejected

    source = "csv"
    for line, raw in _csv_rows(text):
        if "__error__" in raw:
            rejected.append(Rejected(line=line, reason=raw["__error__"]))
            continue
        if "title" not in raw and DEVPOST_TITLE not in raw:
            raise InvalidRequest(
                "The CSV has no 'title' column: use our columns (see the README) or Devpost's export."
            )
        if DEVPOST_TITLE in raw:
            source = "devpost"
            rows.append(_from_devpost(line, raw))
        else:
            rows.append(Row(line=line, values={k: raw.get(k, "") for k in OWN_COLUMNS}))
    return source, rows, rejected
