"""HTML pages for people, rendered on the server from `status` rows (no JavaScript).

Jinja2 templates live in `aggregator/templates/`: `base.html` holds the layout and
style, each page extends it. A new page is a template plus a function here that
hands it plain rows; escaping is on for every value.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from aggregator import __version__
from aggregator.status import Overview, iso, relative


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("aggregator", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt field is an error in tests, not a blank cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso
    env.globals["relative"] = relative
    env.globals["version"] = __version__
    return env


def status_page(view: Overview) -> str:
    """`/`: every source with its health, last and next poll, last error; every output feed."""
    return _environment().get_template("status.html").render(view=view, now=view.now)
