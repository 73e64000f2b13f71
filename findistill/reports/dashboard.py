"""The comparison dashboard: one self-contained HTML file (plotly.js inlined, no network needed to open
it) with F1 against CPU latency and against size, a point per model configuration and the Pareto
fronts drawn, the table (sortable by any column), and tokenization plots when the study has them.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from findistill.reports.table import FRONTS, Row, columns, f1_text, pareto_front

#: marker colours per role (plotly's default qualitative palette)
ROLE_COLOURS = {"teacher": "#636efa", "student": "#ef553b", "quantized": "#00cc96"}
AXIS_TITLES = {"latency_cpu_b1_ms_p50": "CPU latency, batch 1, p50 (ms, log scale)",
               "model_size_mb": "size on disk (MB, log scale)"}

_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var up = th.dataset.order !== 'asc';
    th.closest('tr').querySelectorAll('th').forEach(function (h) { delete h.dataset.order; });
    th.dataset.order = up ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
      if (th.dataset.sort !== 'num') { return up ? x.localeCompare(y) : y.localeCompare(x); }
      var nx = parseFloat(x), ny = parseFloat(y);
      if (isNaN(nx) || isNaN(ny)) { return isNaN(nx) - isNaN(ny); }  // not measured: last either way
      return up ? nx - ny : ny - nx;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table.sortable { border-collapse: collapse; font-size: 13px; }
table.sortable th, table.sortable td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
table.sortable th { background: #f3f3f3; cursor: pointer; }
table.sortable td:first-child, table.sortable th:first-child { text-align: left; }
tr.front td { background: #dcf2e3; }
tr.front td:last-child { font-weight: 600; }
.images img { max-width: 560px; margin: 8px; border: 1px solid #eee; }
"""


def figure(rows: list[Row], split: str):
    """The two scatter plots (F1 vs latency, F1 vs size) with a point per row and the fronts as lines."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(FRONTS), subplot_titles=[f"{split} F1 vs {name}" for name, _ in FRONTS],
                        horizontal_spacing=0.08)
    for col, (name, cost) in enumerate(FRONTS, start=1):
        front = pareto_front(rows, cost)  # drawn first, under the markers
        if front:
            fig.add_trace(go.Scatter(
                x=[r.costs[cost] for r in front], y=[r.f1_mean for r in front], mode="lines",
                line={"dash": "dash", "color": "#888", "shape": "hv"}, name="Pareto front", legendgroup="front",
                legendrank=2000,
                showlegend=col == 1, hoverinfo="skip"), row=1, col=col)
        for role in sorted({r.role for r in rows}):
            shown = [r for r in rows if r.role == role and math.isfinite(r.f1_mean)
                     and math.isfinite(r.costs.get(cost, math.nan))]
            if not shown:
                continue
            fig.add_trace(go.Scatter(
                x=[r.costs[cost] for r in shown], y=[r.f1_mean for r in shown], mode="markers+text",
                text=[r.label for r in shown], textposition="middle right", textfont={"size": 10},
                error_y={"type": "data", "array": [r.f1_sd for r in shown], "visible": True},
                marker={"size": 11, "color": ROLE_COLOURS.get(role, "#ab63fa"),
                        "symbol": ["diamond" if "int8" in r.runtime else "circle" for r in shown]},
                name=role, legendgroup=role, showlegend=col == 1,
                hovertext=[_hover(r) for r in shown], hoverinfo="text",
            ), row=1, col=col)
        values = [r.costs[cost] for r in rows if math.isfinite(r.costs.get(cost, math.nan)) and r.costs[cost] > 0]
        axis = {"title_text": AXIS_TITLES[cost], "type": "log"}
        if values:  # room on the right for the labels, which sit right of their points; ticks 1, 2, 5, 10...
            low, high = math.log10(min(values)), math.log10(max(values))
            axis.update(range=[low - 0.15, high + 0.45], tickvals=_ticks(10 ** (low - 0.15), 10 ** (high + 0.45)))
        fig.update_xaxes(**axis, row=1, col=col)
        fig.update_yaxes(title_text=f"{split} entity F1", row=1, col=col)
    fig.update_layout(height=520, margin={"t": 60, "l": 60, "r": 20, "b": 60}, template="plotly_white")
    return fig


def _ticks(low: float, high: float) -> list[float]:
    """1-2-5 tick values between ``low`` and ``high`` (a log axis labelled this way reads without decades)."""
    ticks, decade = [], 10 ** math.floor(math.log10(low))
    while decade <= high:
        ticks += [m * decade for m in (1, 2, 5) if low <= m * decade <= high]
        decade *= 10
    return ticks


def _hover(row: Row) -> str:
    lines = [f"<b>{html.escape(row.label)}</b>", f"{row.role}, {row.runtime}", f"F1 {f1_text(row)}"]
    lines += [f"{title}: {fmt.format(row.costs[m])}" for m, title, fmt in columns([row]) if m in row.costs
              and math.isfinite(row.costs[m])]
    return "<br>".join(lines)


def _unplotted(rows: list[Row]) -> list[str]:
    """A note naming the rows a plot leaves out (no F1, or a cost not measured)."""
    notes = []
    for name, cost in FRONTS:
        missing = [r.label for r in rows if not (math.isfinite(r.f1_mean)
                                                 and math.isfinite(r.costs.get(cost, math.nan)))]
        if missing:
            notes.append(f"Not on the {name} plot (F1 or {name} not measured): {', '.join(missing)}.")
    return notes


def table_html(rows: list[Row], split: str) -> str:
    """The table as HTML; each cell keeps its raw value in ``data-value`` so sorting is numeric."""
    shown = columns(rows)
    head = [("model", "text"), ("role", "text"), ("runtime", "text"), (f"{split} F1", "num"), ("seeds", "num"),
            ("validation F1", "num"), *[(t, "num") for _, t, _ in shown], ("Pareto", "text")]
    body = []
    for row in sorted(rows, key=lambda r: -r.f1_mean if math.isfinite(r.f1_mean) else math.inf):
        cells = [(row.label, row.label), (row.role, row.role), (row.runtime, row.runtime),
                 (row.f1_mean, f1_text(row)), (row.seeds, str(row.seeds)),
                 (row.validation_f1, "n/a" if not math.isfinite(row.validation_f1) else f"{row.validation_f1:.4f}")]
        for metric, _, fmt in shown:
            value = row.costs.get(metric, math.nan)
            cells.append((value, fmt.format(value) if math.isfinite(value) else "n/a"))
        cells.append((",".join(row.fronts), ", ".join(row.fronts)))
        tds = "".join(f'<td data-value="{html.escape(str(v))}" title="{html.escape(" ".join(row.uris))}">'
                      f"{html.escape(text)}</td>" for v, text in cells)
        body.append(f'<tr class="{"front" if row.fronts else ""}">{tds}</tr>')
    return ('<table class="sortable" id="comparison"><thead><tr>'
            + "".join(f'<th data-sort="{kind}">{html.escape(h)}</th>' for h, kind in head)
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")


def write_dashboard(rows: list[Row], path: str | Path, *, title: str, split: str, notes: list[str] | None = None,
                    images: dict[str, bytes] | None = None) -> Path:
    """Write the dashboard of ``rows`` to ``path``; ``images`` (caption -> PNG bytes) are shown below the
    table (tokenization plots). Returns the path."""
    plot = figure(rows, split).to_html(full_html=False, include_plotlyjs=True, div_id="fronts",
                                       config={"displaylogo": False})
    pictures = "".join(
        f'<figure><img alt="{html.escape(c)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(c)}</figcaption></figure>" for c, png in (images or {}).items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{len(rows)} model configurations; F1 on {html.escape(split)} (mean ± sd over seeds where there are several).
Points on a dashed line are Pareto-optimal: no other model is both at least as accurate and cheaper.
Diamonds are int8 runtimes. Click a column title to sort.</p>
{"".join(f"<p>{html.escape(n)}</p>" for n in [*(notes or []), *_unplotted(rows)])}
{plot}
<h2>All models</h2>
{table_html(rows, split)}
{f'<h2>Tokenization</h2><div class="images">{pictures}</div>' if pictures else ""}
<script>{_SORT_SCRIPT}</script>
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
