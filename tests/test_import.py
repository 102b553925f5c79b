from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.support import SHARED_DATA
from voting.domain.errors import InvalidRequest
from voting.domain.submissions import slugify
from voting.extensions import db
from voting.models import AuditEvent, Project, TeamMember
from voting.services.projects import import_projects

HEADER = "slug,title,team,members,category,theme,summary,description,repo_url,demo_url,image_url\n"


def count_projects() -> int:
    return int(db.session.execute(select(func.count(Project.id))).scalar_one())


def test_both_samples_twice_make_fifteen_projects(ctx: Flask) -> None:
    for _ in range(2):
        for name in ("projects-sample.csv", "devpost-export-sample.csv"):
            report = import_projects((SHARED_DATA / name).read_bytes(), name)
            assert report.ok
    assert count_projects() == 15
    slugs = db.session.execute(select(Project.slug)).scalars().all()
    assert len(slugs) == len(set(slugs)) == 15


def test_reimport_reports_unchanged_then_updated(ctx: Flask) -> None:
    data = (SHARED_DATA / "projects-sample.csv").read_bytes()
    first = import_projects(data, "p.csv")
    second = import_projects(data, "p.csv")
    assert len(first.created) == 12 and not first.updated
    assert len(second.unchanged) == 12 and not second.created
    changed = data.replace(
        b"Early flood warnings from open satellite data", b"Flood warnings now with SMS"
    )
    third = import_projects(changed, "p.csv")
    assert third.updated == ["flood-watch"]
    project = db.session.execute(select(Project).where(Project.slug == "flood-watch")).scalar_one()
    assert project.summary == "Flood warnings now with SMS"


def test_devpost_export_maps_columns_and_hashes_emails(ctx: Flask) -> None:
    report = import_projects((SHARED_DATA / "devpost-export-sample.csv").read_bytes(), "d.csv")
    assert report.source_format == "devpost"
    assert sorted(report.created) == ["lecture-lens", "rain-ready", "seed-vault-stats"]
    rain = db.session.execute(select(Project).where(Project.slug == "rain-ready")).scalar_one()
    assert rain.category == "Train"
    assert rain.theme == "Global Impact"
    assert rain.repo_url == "https://github.com/example-rain/rain-ready"
    assert rain.demo_url == "https://youtu.be/lllllllllll"
    assert rain.members == "Ines Carvalho; Tariq Haddad"
    assert rain.built_with == "python, pytorch, xarray"
    lens = db.session.execute(select(Project).where(Project.slug == "lecture-lens")).scalar_one()
    assert lens.repo_url == "https://github.com/example-lens/lecture-lens"
    hashes = db.session.execute(select(TeamMember.email_hash)).scalars().all()
    assert len(hashes) == 5
    # Only keyed hashes are stored: no address appears anywhere in the row.
    assert all("@" not in h and len(h) == 64 for h in hashes)


def test_broken_rows_are_named_and_good_rows_still_import(ctx: Flask) -> None:
    good = "ok-one,Good One,Team A,Ann,Build,Global Impact,s,d,https://github.com/a/b,,\n"
    no_title = "no-title,,Team B,Bo,Build,Global Impact,s,d,,,\n"
    bad_url = "bad-url,Bad Url,Team C,Cy,Train,,s,d,github.com/no-scheme,,\n"
    bad_cat = "bad-cat,Bad Category,Team D,Di,Hardware,,s,d,,,\n"
    good_two = "ok-two,Good Two,Team E,Ed, analyse ,global impact,s,d,,,\n"
    data = HEADER.encode() + good.encode() + no_title.encode() + bad_url.encode() + bad_cat.encode()
    data += b"bad-enc,Caf" + b"\xe9 Latin1,Team F,Fe,Build,,s,d,,,\n" + good_two.encode()
    report = import_projects(data, "mixed.csv")
    assert sorted(report.created) == ["ok-one", "ok-two"]
    reasons = {r.line: r.reason for r in report.rejected}
    assert set(reasons) == {3, 4, 5, 6}
    assert "title is missing" in reasons[3]
    assert "not a web address" in reasons[4]
    assert "unknown category 'Hardware'" in reasons[5] and "Build, Train, Analyse" in reasons[5]
    assert "not UTF-8" in reasons[6]
    assert count_projects() == 2
    two = db.session.execute(select(Project).where(Project.slug == "ok-two")).scalar_one()
    assert (two.category, two.theme) == ("Analyse", "Global Impact")


def test_dry_run_writes_nothing(ctx: Flask) -> None:
    report = import_projects(
        (SHARED_DATA / "projects-sample.csv").read_bytes(), "p.csv", dry_run=True
    )
    assert len(report.created) == 12
    assert count_projects() == 0
    assert db.session.execute(select(func.count(AuditEvent.id))).scalar_one() == 0


def test_import_is_audited(ctx: Flask) -> None:
    import_projects((SHARED_DATA / "projects-sample.csv").read_bytes(), "p.csv", actor="ana")
    event = db.session.execute(select(AuditEvent)).scalar_one()
    assert (event.actor, event.action) == ("ana", "projects.import")
    assert json.loads(event.detail)["created"] == 12


def test_duplicate_slug_in_file_is_rejected(ctx: Flask) -> None:
    row = "dup,Dup,T,M,Build,,s,d,,,\n"
    report = import_projects((HEADER + row + row).encode(), "d.csv")
    assert report.created == ["dup"]
    assert report.rejected[0].line == 3 and "already appears on line 2" in report.rejected[0].reason


def test_unicode_and_long_text_are_stored_as_given(ctx: Flask) -> None:
    title = "Ñandú 🚀 <script>alert(1)</script>"
    description = "Long " * 2000 + "✓"
    doc = {
        "projects": [
            {
                "title": title,
                "category": "build",
                "description": description,
                "members": ["Zoë", "李"],
            }
        ]
    }
    report = import_projects(json.dumps(doc).encode(), "p.json")
    assert report.source_format == "json"
    project = db.session.execute(select(Project)).scalar_one()
    assert project.title == title
    assert project.description == description
    assert project.members == "Zoë; 李"
    assert project.slug == "nandu-script-alert-1-script"


def test_text_is_escaped_when_shown(app: Flask, make_poll, client) -> None:  # type: ignore[no-untyped-def]
    doc = {"projects": [{"title": "<b>Bold</b> 🚀", "category": "Build"}]}
    with app.app_context():
        import_projects(json.dumps(doc).encode(), "p.json")
    slug = make_poll()
    page = client.get(f"/p/{slug}").get_data(as_text=True)
    assert "&lt;b&gt;Bold&lt;/b&gt; 🚀" in page
    assert "<b>Bold</b>" not in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1, 2", "not valid JSON"),
        (b'{"nope": 1}', "must be a list"),
        (b"", "holds no projects"),
        (b"name,team\nx,y\n", "no 'title' column"),
    ],
)
def test_unreadable_files_are_refused_whole(ctx: Flask, data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        import_projects(data, "x.json" if data.startswith(b"[") else "x.csv")
    assert count_projects() == 0


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("FloodWatch", "floodwatch"),
        ("Crop  Doctor!", "crop-doctor"),
        ("Tomás Álvarez", "tomas-alvarez"),
        ("🚀🚀", None),
    ],
)
def test_slugify(title: str, slug: str | None) -> None:
    result = slugify(title)
    if slug is None:
        assert result.startswith("project-")
    else:
        assert result == slug


def test_cli_import_reports_lines_and_exit_code(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "a,A,T,M,Build,,s,d,,,\nb,,T,M,Build,,s,d,,,\n", encoding="utf-8")
    result = runner.invoke(args=["projects", "import", str(bad)])
    assert result.exit_code == 1
    assert "1 created" in result.output and "1 rejected" in result.output
    assert "line 3" in result.output and "title is missing" in result.output
    ok = runner.invoke(
        args=["projects", "import", str(SHARED_DATA / "projects-sample.csv"), "--dry-run"]
    )
    assert ok.exit_code == 0 and "Dry run" in ok.output
