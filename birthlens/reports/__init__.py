"""Reports: probe results, training runs and ablations as one self-contained HTML page.

    from birthlens.reports import gather, write_report
    data = gather(["runs/quick", "smollm2-135m"])      # probes what it needs
    write_report(data, Path("report.html"))

Modules, one idea each: ``birth`` (probe a run's checkpoints over training),
``entries`` (what the report knows about one model), ``ablation`` (reading ablation
JSON defensively), ``figures`` (seaborn figures as embedded PNG), ``sections`` (one
builder per section of the page), ``html`` (Jinja2 rendering), ``report`` (turning
command-line inputs into report data).
"""

from birthlens.reports.report import bundle, gather
from birthlens.reports.sections import ReportData


def write_report(data, out):
    """Render ``data`` to the HTML file ``out`` (imports matplotlib only when called)."""
    from birthlens.reports.html import write_report as _write

    return _write(data, out)


__all__ = ["ReportData", "bundle", "gather", "write_report"]
