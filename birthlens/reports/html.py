"""Render a ReportData to one self-contained HTML page (Jinja2, autoescape on).

    html = render(data)                     # a str: inline CSS, figures as data URIs
    write_report(data, Path("report.html"))

The page has no script, no external font, stylesheet or image: it opens with no
network. Autoescape is forced on (the templates end in .j2, which Jinja2's default
extension check would not escape): model names and token strings are untrusted text.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from birthlens import __version__
from birthlens.errors import BirthlensError
from birthlens.reports.sections import ReportData, build_sections, fmt_number, head_name


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("birthlens.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a typo in a template fails the tests, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    env.filters["head"] = head_name
    return env


def render(data: ReportData) -> str:
    """The report as one HTML string."""
    sections = build_sections(data)
    return environment().get_template("report.html.j2").render(
        title=data.title,
        sections=sections,
        version=__version__,
        generated=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    )


def write_report(data: ReportData, out: Path) -> Path:
    """Render and write atomically (a half-written report never replaces a good one)."""
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise BirthlensError(f"cannot write {out}: folder {folder} does not exist")
    html = render(data)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
