"""The report's HTML, from Jinja2 templates with autoescape on: every value from data is escaped.

Sections, tables and the page are templates here; charts (``spark.reports.charts``) are divs
whose figure JSON sits in a ``data-figure`` attribute. The page inlines plotly.js once and one
small script draws every chart, so the file opens offline and data never lands in a script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape
from markupsafe import Markup

TABLE = """<table>
<tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr{% if bad[loop.index0] %} class="bad"{% endif %}>
{%- for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>"""

CHART = '<div class="chart" data-figure="{{ figure }}"></div>'

NOTE = '<p class="note">{{ message }}</p>'

SECTION = """<section id="{{ anchor }}"><h2>{{ title }}</h2>
{% if lines %}<ul>{% for line in lines %}<li>{{ line }}</li>{% endfor %}</ul>{% endif %}
{{ body }}</section>"""

# Draws every chart; sets data-charts on <html> when all are drawn (the browser test waits on it).
DRAW = """
(function () {
  const divs = Array.from(document.querySelectorAll("div.chart[data-figure]"));
  const config = {displaylogo: false, responsive: true};
  Promise.all(divs.map((div) => {
    const figure = JSON.parse(div.dataset.figure);
    return Plotly.newPlot(div, figure.data, figure.layout, config);
  })).then(() => {
    document.documentElement.dataset.charts = String(divs.length);
  });
})();
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CityFleet report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:1180px;margin:1.5em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
nav a{margin-right:1em} .meta{color:#666}
.chart{width:100%;min-height:300px;margin:.6em 0}
table{border-collapse:collapse;font-size:12px;margin:1em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
tr.bad td{background:#fdd} .verdict{font-weight:bold} .verdict.bad{color:#b00}
details{margin:.6em 0} .note{color:#666;font-style:italic}
</style>
<script>{{ plotly_js }}</script>
</head><body>
<h1>CityFleet report</h1>
<p class="meta">Lake {{ root }}, generated {{ generated }}</p>
{% if verdict %}<p class="verdict{% if not clean %} bad{% endif %}">{{ verdict }}</p>{% endif %}
<nav>{% for s in sections %}<a href="#{{ s.anchor }}">{{ s.title }}</a>{% endfor %}</nav>
{% for s in sections %}{{ s.html }}{% endfor %}
<script>{{ draw }}</script>
</body></html>"""

ENV = Environment(
    loader=DictLoader(
        {"table": TABLE, "chart": CHART, "note": NOTE, "section": SECTION, "page": PAGE}
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
)


@dataclass(frozen=True)
class Section:
    """One rendered section of the page, with the anchor the navigation links to."""

    anchor: str
    title: str
    html: Markup


def table(
    header: Sequence[str], rows: Sequence[Sequence[object]], bad: Sequence[bool] = ()
) -> Markup:
    """An HTML table; every cell is escaped, because cells carry what devices sent."""
    flags = [i < len(bad) and bad[i] for i in range(len(rows))]
    return Markup(ENV.get_template("table").render(header=header, rows=rows, bad=flags))


def chart_div(figure_json: str) -> Markup:
    return Markup(ENV.get_template("chart").render(figure=figure_json))


def note(message: str) -> Markup:
    return Markup(ENV.get_template("note").render(message=message))


def section(anchor: str, title: str, lines: Sequence[str], body: Markup | str) -> Section:
    """A titled section: summary lines (escaped) above a body already rendered here."""
    html = ENV.get_template("section").render(
        anchor=anchor, title=title, lines=lines, body=Markup(body)
    )
    return Section(anchor, title, Markup(html))


def document(
    sections: Sequence[Section],
    root: str,
    generated: str,
    verdict: str,
    clean: bool,
    plotly_js: str,
) -> str:
    """The whole page. plotly.js is inlined as-is (it is the library, not data)."""
    return ENV.get_template("page").render(
        sections=sections,
        root=root,
        generated=generated,
        verdict=verdict,
        clean=clean,
        plotly_js=Markup(plotly_js),
        draw=Markup(DRAW),
    )
