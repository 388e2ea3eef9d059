"""The report's Jinja2 template and stylesheet, kept as strings so they ship as code.

Autoescaping is on: every value is escaped unless it is marked safe in Python (the
plotly.js bundle, the stylesheet and the figure snippets plotly writes).
"""

from __future__ import annotations

__all__ = ["CSS", "TEMPLATE"]

CSS = """
:root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc; --card: #fff;
  --accent: #2563eb; --fail: #dc2626; --warn: #d97706; --info: #2563eb; --good: #16a34a; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
header { background: #0f172a; color: #f8fafc; padding: 24px 40px 0; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 600; overflow-wrap: anywhere; }
header .sub { margin: 0 0 16px; color: #cbd5e1; }
nav { display: flex; flex-wrap: wrap; gap: 4px; }
nav a { color: #cbd5e1; text-decoration: none; padding: 8px 12px; border-radius: 6px 6px 0 0; }
nav a:hover { background: #1e293b; color: #fff; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 40px 48px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 20px 24px; margin-bottom: 24px; }
h2 { margin: 0 0 16px; font-size: 19px; font-weight: 600; }
h3 { margin: 20px 0 8px; font-size: 15px; font-weight: 600; }
.empty, .note { color: var(--muted); }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
.kpi { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.kpi .value { font-size: 22px; font-weight: 600; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: break-word; }
th { background: #f1f5f9; font-weight: 600; font-size: 13px; white-space: nowrap; }
table.kv th { width: 200px; background: none; color: var(--muted); font-weight: 500; }
td.num, th.num { text-align: right; }
tr.primary td { font-weight: 600; background: #eff6ff; }
tr.best td { background: #f0fdf4; }
.better { color: var(--good); } .worse { color: var(--fail); }
.scroll { max-height: 480px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
.scroll th { position: sticky; top: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; color: #fff; text-transform: uppercase; }
.badge.fail { background: var(--fail); } .badge.warn { background: var(--warn); }
.badge.info { background: var(--info); }
tr.sev-fail td:first-child { border-left: 4px solid var(--fail); }
tr.sev-warn td:first-child { border-left: 4px solid var(--warn); }
tr.sev-info td:first-child { border-left: 4px solid var(--info); }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
@media (max-width: 1100px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.plot { border: 1px solid var(--line); border-radius: 8px; padding: 4px; min-width: 0; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { color: var(--muted); text-align: center; padding: 0 0 32px; font-size: 12px; }
"""

TEMPLATE = """<!DOCTYPE html>
{%- macro table(headers, rows, cls="") -%}
<div class="scroll"><table class="{{ cls }}"><thead><tr>
{%- for h in headers %}<th class="{{ h[1] }}">{{ h[0] }}</th>{% endfor -%}
</tr></thead><tbody>
{%- for row in rows %}<tr class="{{ row.cls }}">
{%- for cell in row.cells %}<td class="{{ cell[1] }}">{{ cell[0] }}</td>{% endfor -%}
</tr>{% endfor -%}
</tbody></table></div>
{%- endmacro %}
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ css }}</style>
<script type="text/javascript">{{ plotlyjs }}</script>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<p class="sub">{{ subtitle }}</p>
<nav>{% for id, name in sections %}<a href="#{{ id }}">{{ name }}</a>{% endfor %}</nav>
</header>
<main>
<section id="summary"><h2>Summary</h2>
<div class="kpis">{% for label, value in kpis %}
<div class="kpi"><div class="label">{{ label }}</div><div class="value">{{ value }}</div></div>
{%- endfor %}</div>
<table class="kv">{% for label, value in summary %}<tr><th>{{ label }}</th><td>{{ value }}</td>
</tr>{% endfor %}</table>
</section>

<section id="data"><h2>Data</h2>
{% if data_info %}<table class="kv">{% for label, value in data_info %}<tr><th>{{ label }}</th>
<td>{{ value }}</td></tr>{% endfor %}</table>{% endif %}
{% if columns.rows %}<h3>Columns</h3>{{ table(columns.headers, columns.rows) }}
{% else %}<p class="empty">No per-column statistics were recorded.</p>{% endif %}
{% if balance.rows %}<h3>Class balance</h3>
<div class="grid"><div>{{ table(balance.headers, balance.rows) }}</div>
{% if balance_plot %}<div class="plot">{{ balance_plot }}</div>{% endif %}</div>{% endif %}
</section>

<section id="findings"><h2>Findings</h2>
{% if findings.rows %}<p>{{ findings_summary }}</p>{{ table(findings.headers, findings.rows) }}
{% else %}<p class="empty">No validation or leakage findings.</p>{% endif %}
</section>

<section id="tuning"><h2>Tuning</h2>
{% if tuning_plot %}<div class="plot">{{ tuning_plot }}</div>{% endif %}
{% if trials.rows %}<h3>Trials</h3>{{ table(trials.headers, trials.rows) }}
{% else %}<p class="empty">No tuning trials were recorded.</p>{% endif %}
</section>

<section id="metrics"><h2>Test metrics</h2>
<p class="note">On {{ n_rows }} held-out rows. The primary metric is highlighted.</p>
{{ table(metrics.headers, metrics.rows) }}
</section>

<section id="plots"><h2>Diagnostic plots</h2>
{% if plots %}<div class="grid">{% for plot in plots %}<div class="plot">{{ plot }}</div>
{% endfor %}</div>{% endif %}
{% if residuals_plot %}<div class="plot">{{ residuals_plot }}</div>{% endif %}
{% if not plots and not residuals_plot %}<p class="empty">No plots for this task.</p>{% endif %}
</section>

<section id="importance"><h2>Feature importance</h2>
{% if importance_plot %}<p class="note">Permutation importance on the test split: how much
{{ metric }} worsens when one input column is shuffled (mean and standard deviation over
repeats; top {{ max_features }}).</p><div class="plot">{{ importance_plot }}</div>
{% else %}<p class="empty">Permutation importance was not computed.</p>{% endif %}
</section>

<section id="fairness"><h2>Slices and fairness</h2>
{% if fairness.rows %}{{ table(fairness.headers, fairness.rows) }}
<p class="note">Slices with fewer than {{ min_rows }} rows are listed but not scored.
Demographic parity difference: the largest gap in the rate of positive (or, for multiclass,
any one class's) predictions between slices; equalized odds difference: the larger of the
true- and false-positive-rate gaps.</p>
{% for s in slice_blocks %}<h3>{{ s.column }}</h3>
{% if s.plot %}<div class="plot">{{ s.plot }}</div>{% endif %}{{ table(s.headers, s.rows) }}
{% endfor %}
{% else %}<p class="empty">No sensitive columns were given.</p>{% endif %}
</section>
</main>
<footer>Generated by Forgeline on {{ generated }}.</footer>
<script type="text/javascript">
// A figure drawn before the page finished its layout keeps its first width: redraw at load.
window.addEventListener("load", function () {
  document.querySelectorAll(".plotly-graph-div").forEach(function (d) { Plotly.Plots.resize(d); });
});
</script>
</body>
</html>
"""
