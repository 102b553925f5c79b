"""Every route in app.url_map, with real values for its arguments, for tests that walk them all.

A route added to the app is walked at once: a rule whose arguments have no sample value
here fails the walk (add one), rather than being skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from flask import Flask

from tests.support import mint_on, project_slugs
from voting.services import issuing, overlay, polls

# Methods every rule answers on its own (werkzeug adds them); the rest are the route's.
AUTOMATIC = frozenset({"HEAD", "OPTIONS"})
# Methods no route of this app takes.
FOREIGN = ("TRACE", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: str
    url: str
    methods: frozenset[str]

    @property
    def own_methods(self) -> frozenset[str]:
        return self.methods - AUTOMATIC


@dataclass(frozen=True)
class Samples:
    """One open poll (live results) with a project, a minted batch, a token and its overlay key."""

    slug: str
    project: str
    batch: str
    token: str
    overlay_key: str

    @classmethod
    def make(cls, app: Flask, slug: str) -> Samples:
        with app.app_context():
            minted = issuing.mint_tokens(slug, 1, actor="test")
            key = overlay.overlay_key(polls.get_poll(slug))
        [token] = mint_on(app, slug, 1)
        return cls(slug, project_slugs(app, slug)[0], minted.batch, token, key)


def routes(app: Flask, samples: Samples) -> Iterator[Route]:
    """Each rule of the app, built with the sample values (static: a real file)."""
    values = {
        "slug": samples.slug,
        "project": samples.project,
        "batch": samples.batch,
        "token": samples.token,
        "filename": "style.css",
    }
    adapter = app.url_map.bind("vote.test")
    for rule in app.url_map.iter_rules():
        missing = set(rule.arguments) - set(values) - set(rule.defaults or {})
        assert not missing, f"route_kit has no sample value for {missing} of {rule.rule}"
        url = adapter.build(rule.endpoint, {k: values[k] for k in rule.arguments if k in values})
        if rule.endpoint == "overlay.show":
            url += f"?key={samples.overlay_key}"
        yield Route(rule.endpoint, rule.rule, url, frozenset(rule.methods or ()))
