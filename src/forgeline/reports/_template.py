"""The HTML reports' Jinja2 templates and stylesheet, kept as strings so they ship as code.

One page frame (``base.html``: head with the stylesheet and plotly.js, the header with its
navigation, the footer) and the shared macros (``macros.html``: tables, figures, the
summary block) serve every report; ``training.html`` (:mod:`forgeline.reports.html`),
``monitoring.html`` (:mod:`forgeline.reports.monitoring`) and ``labeling.html``
(:mod:`forgeline.reports.labeling`) only fill in their sections.

Autoescaping is on: every value is escaped unless it is marked safe in Python (the
plotly.js bundle, the stylesheet and the figure snippets plotly writes).
"""

from __future__ import annotations

from functools import cache

import jinja2

__all__ = ["CSS", "TEMPLATES", "template"]

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
.kpi.bad .value { color: var(--fail); } .kpi.good .value { color: var(--good); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: break-word; }
th { background: #f1f5f9; font-weight: 600; font-size: 13px; white-space: nowrap; }
table.kv th { width: 200px; background: none; color: var(--muted); font-weight: 500; }
td.num, th.num { text-align: right; }
tr.primary td { font-weight: 600; background: #eff6ff; }
tr.best td { background: #f0fdf4; } tr.muted td { color: var(--muted); }
.better { color: var(--good); } .worse { color: var(--fail); }
.scroll { max-height: 480px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
.scroll th { position: sticky; top: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; color: #fff; text-transform: uppercase; }
.badge.fail { background: var(--fail); } .badge.warn { background: var(--warn); }
.badge.info { background: var(--info); }
.badge.ok { background: var(--good); } .badge.drift { background: var(--fail); }
tr.sev-fail td:first-child { border-left: 4px solid var(--fail); }
tr.sev-warn td:first-child { border-left: 4px solid var(--warn); }
tr.sev-info td:first-child { border-left: 4px solid var(--info); }
tr.drifted td:first-child { border-left: 4px solid var(--fail); }
ul.warnings { margin: 0; padding-left: 20px; color: var(--warn); }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
@media (max-width: 1100px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.grid3 { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px; }
@media (max-width: 1300px) { .grid3 { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media (max-width: 900px) { .grid3 { grid-template-columns: minmax(0, 1fr); } }
.plot { border: 1px solid var(--line); border-radius: 8px; padding: 4px; min-width: 0; }
.plot + .plot, .scroll + .grid, .scroll + .scroll, .scroll + .plot { margin-top: 12px; }
.grid > .plot + .plot, .grid3 > .plot + .plot { margin-top: 0; }
.plot h4 { margin: 6px 10px 0; font-size: 14px; font-weight: 600; overflow-wrap: anywhere; }
.plot h4 .sub { color: var(--muted); font-weight: 400; }
.plot h4 .sub.bad { color: var(--fail); font-weight: 600; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { color: var(--muted); text-align: center; padding: 0 0 32px; font-size: 12px; }
"""

MACROS = """
{%- macro table(t, cls="") -%}
<div class="scroll"><table class="{{ cls }}"><thead><tr>
{%- for h in t.headers %}<th class="{{ h[1] }}">{{ h[0] }}</th>{% endfor -%}
</tr></thead><tbody>
{%- for row in t.rows %}<tr class="{{ row.cls }}">
{%- for cell in row.cells %}<td class="{{ cell[1] }}">{{ cell[0] }}</td>{% endfor -%}
</tr>{% endfor -%}
</tbody></table></div>
{%- endmacro %}

{%- macro kv(pairs) -%}
<table class="kv">{% for label, value in pairs %}<tr><th>{{ label }}</th><td>{{ value }}</td>
</tr>{% endfor %}</table>
{%- endmacro %}

{%- macro kpis(items) -%}
<div class="kpis">{% for label, value, mood in items %}
<div class="kpi {{ mood }}"><div class="label">{{ label }}</div>
<div class="value">{{ value }}</div></div>
{%- endfor %}</div>
{%- endmacro %}
"""

BASE = """<!DOCTYPE html>
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
{% block main %}{% endblock %}
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

TRAINING = """{% extends "base.html" %}
{% from "macros.html" import table, kv, kpis as kpi_cards %}
{% block main %}
<section id="summary"><h2>Summary</h2>
{{ kpi_cards(kpis) }}
{{ kv(summary) }}
</section>

<section id="data"><h2>Data</h2>
{% if data_info %}{{ kv(data_info) }}{% endif %}
{% if columns.rows %}<h3>Columns</h3>{{ table(columns) }}
{% else %}<p class="empty">No per-column statistics were recorded.</p>{% endif %}
{% if balance.rows %}<h3>Class balance</h3>
<div class="grid"><div>{{ table(balance) }}</div>
{% if balance_plot %}{{ balance_plot }}{% endif %}</div>{% endif %}
</section>

<section id="findings"><h2>Findings</h2>
{% if findings.rows %}<p>{{ findings_summary }}</p>{{ table(findings) }}
{% else %}<p class="empty">No validation or leakage findings.</p>{% endif %}
</section>

<section id="tuning"><h2>Tuning</h2>
{% if tuning_plot %}{{ tuning_plot }}{% endif %}
{% if trials.rows %}<h3>Trials</h3>{{ table(trials) }}
{% else %}<p class="empty">No tuning trials were recorded.</p>{% endif %}
</section>

<section id="metrics"><h2>Test metrics</h2>
<p class="note">On {{ n_rows }} held-out rows. The primary metric is highlighted.</p>
{{ table(metrics) }}
</section>

<section id="plots"><h2>Diagnostic plots</h2>
{% if plots %}<div class="grid">{% for plot in plots %}{{ plot }}
{% endfor %}</div>{% endif %}
{% if residuals_plot %}{{ residuals_plot }}{% endif %}
{% if not plots and not residuals_plot %}<p class="empty">No plots for this task.</p>{% endif %}
</section>

<section id="importance"><h2>Feature importance</h2>
{% if importance_plot %}<p class="note">Permutation importance on the test split: how much
{{ metric }} worsens when one input column is shuffled (mean and standard deviation over
repeats; top {{ max_features }}){% if importance_note %}, {{ importance_note }}{% endif %}.</p>
{{ importance_plot }}
{% else %}<p class="empty">Permutation importance was not computed{% if importance_note %}:
{{ importance_note }}{% endif %}.</p>{% endif %}
</section>

<section id="explain"><h2>Why the model decides</h2>
<p class="note">{{ explain_note }}</p>
{% if explain %}<div class="grid">{{ explain.summary }}{{ explain.bars }}</div>
{% if explain.dependence %}<h3>Dependence of the top features</h3>
<div class="grid">{% for plot in explain.dependence %}{{ plot }}
{% endfor %}</div>{% endif %}
<h3>Interactions</h3>
{% if explain.interactions %}<p class="note">{{ explain.interaction_note }}; a pair's value
is how much the two features together move the output beyond their separate effects.</p>
{{ explain.interactions }}
{% else %}<p class="empty">No interactions: {{ explain.interaction_note }}.</p>{% endif %}
{% endif %}
</section>

<section id="fairness"><h2>Slices and fairness</h2>
{% if limits %}<h3>Fairness limits</h3>{{ table(limits) }}
<p class="note">A limit is checked on the point estimate; the interval (bootstrap, stratified
by group) says how sure it is.{% if limits.note %} {{ limits.note }}{% endif %}</p>{% endif %}
{% if fairness.rows %}{{ table(fairness) }}
<p class="note">Slices with fewer than {{ min_rows }} rows are listed but not scored.
Demographic parity difference: the largest gap in the rate of positive (or, for multiclass,
any one class's) predictions between slices; equalized odds difference: the larger of the
true- and false-positive-rate gaps.</p>
{% for s in slice_blocks %}<h3>{{ s.column }}</h3>
{% if s.plot %}{{ s.plot }}{% endif %}{{ table(s) }}
{% if s.groups %}{{ table(s.groups) }}
<p class="note">A group's calibration gap is its observed positive rate minus its mean predicted
probability; Brier: the mean squared error of that probability.</p>{% endif %}
{% if s.differences %}{{ table(s.differences) }}{% endif %}
{% if s.rates_plot %}{{ s.rates_plot }}{% endif %}
{% endfor %}
{% else %}<p class="empty">No sensitive columns were given.</p>{% endif %}
</section>
{% endblock %}
"""

MONITORING = """{% extends "base.html" %}
{% from "macros.html" import table, kv, kpis as kpi_cards %}
{% block main %}
<section id="summary"><h2>Summary</h2>
{{ kpi_cards(kpis) }}
{{ kv(summary) }}
{% if warnings %}<h3>Warnings</h3><ul class="warnings">{% for w in warnings %}<li>{{ w }}</li>
{% endfor %}</ul>{% endif %}
</section>

<section id="alerts"><h2>Alerts</h2>
{% if alerts.rows %}{{ table(alerts) }}
{% else %}<p class="empty">No alert rules were given.</p>{% endif %}
</section>

<section id="drift"><h2>Data drift</h2>
<p class="note">{{ drift_note }}</p>
{% if drift.rows %}{{ table(drift) }}
{% else %}<p class="empty">No feature could be compared.</p>{% endif %}
{% if skipped.rows %}<h3>Not checked for drift</h3>{{ table(skipped) }}{% endif %}
{% if distributions %}<h3>Distributions: reference and current</h3>
<p class="note">{{ distributions_note }}</p>
<div class="grid3">{% for plot in distributions %}{{ plot }}
{% endfor %}</div>{% endif %}
</section>

<section id="time"><h2>Drift over time</h2>
{% if time_plots %}<p class="note">{{ windows_note }}</p>
{% for plot in time_plots %}{{ plot }}{% endfor %}
{{ table(windows) }}
{% else %}<p class="empty">{{ windows_note }}</p>{% endif %}
</section>

<section id="prediction"><h2>Prediction drift</h2>
{% if prediction_plot %}<p class="note">{{ prediction_note }}</p>
{{ prediction_plot }}
{% else %}<p class="empty">{{ prediction_note }}</p>{% endif %}
</section>

<section id="multivariate"><h2>Multivariate drift</h2>
{% if multivariate_info %}{{ kv(multivariate_info) }}
{% if multivariate_plot %}{{ multivariate_plot }}{% endif %}
<p class="note">A PCA of the numeric training features reconstructs each row; when features
stop moving together as they did in training the error rises, even if no single column
drifted. The band is the reference error +- {{ sigma }} standard errors for the window's size.</p>
{% else %}<p class="empty">{{ multivariate_note }}</p>{% endif %}
</section>

<section id="attribution"><h2>Attribution drift</h2>
{% if attribution_plot %}<p class="note">{{ attribution_note }}</p>
{{ attribution_plot }}{{ table(attribution) }}
{% else %}<p class="empty">{{ attribution_note }}</p>{% endif %}
</section>

<section id="quality"><h2>Data quality</h2>
{% if issues.rows %}{{ table(issues) }}
{% else %}<p class="empty">No data quality issues.</p>{% endif %}
<h3>Columns</h3>{{ table(quality) }}
<p class="note">{{ quality_note }}</p>
</section>

<section id="performance"><h2>Performance</h2>
{% if performance.rows %}<p class="note">{{ performance_note }}</p>{{ table(performance) }}
{% for plot in performance_plots %}{{ plot }}{% endfor %}
{% else %}<p class="empty">{{ performance_note }}</p>{% endif %}
</section>
{% endblock %}
"""

LABELING = """{% extends "base.html" %}
{% from "macros.html" import table, kv, kpis as kpi_cards %}
{% block main %}
<section id="summary"><h2>Summary</h2>
{{ kpi_cards(kpis) }}
{% if accuracy_plot %}<div class="grid"><div>{{ kv(summary) }}</div>
{{ accuracy_plot }}</div>{% else %}{{ kv(summary) }}{% endif %}
</section>

<section id="sources"><h2>Sources</h2>
<p class="note">{{ sources_note }}</p>
{{ table(sources) }}
{% if source_plots %}<div class="grid">{% for plot in source_plots %}{{ plot }}
{% endfor %}</div>{% endif %}
{% if agreement_plot %}<h3>Agreement</h3>{{ agreement_plot }}
{% else %}<p class="empty">No pairwise agreement: it needs two sources or more.</p>{% endif %}
</section>

<section id="threshold"><h2>Confidence threshold</h2>
<p class="note">{{ threshold_note }}</p>
{% if threshold_plots %}<div class="grid">{% for plot in threshold_plots %}{{ plot }}
{% endfor %}</div>
<h3>At each threshold</h3>{{ table(thresholds) }}
{% else %}<p class="empty">No threshold grid was recorded.</p>{% endif %}
</section>

<section id="classes"><h2>Classes</h2>
{% if classes_plot %}<div class="grid"><div>{{ table(class_table) }}</div>
{{ classes_plot }}</div>
{% else %}<p class="empty">No row was labelled.</p>{% endif %}
</section>

<section id="llm"><h2>LLM labeller</h2>
{% if llm %}<div class="grid"><div>{{ kv(llm) }}</div>
<div>{% if kappa_plot %}{{ kappa_plot }}{% endif %}<p class="note">{{ kappa_note }}</p></div>
</div>
{% else %}<p class="empty">{{ llm_note }}</p>{% endif %}
</section>

<section id="errors"><h2>Likely label errors</h2>
{% if suspects.rows %}<p class="note">Rows whose existing label the cross-validated model
doubts most (confident learning), with the label it suggests; a higher score is more
suspect. Top {{ suspects.rows|length }}.</p>{{ table(suspects) }}
{% else %}<p class="empty">No suspects: the data had no existing labels to check, or none
looks wrong.</p>{% endif %}
</section>

<section id="review"><h2>Review queue</h2>
{% if review.rows %}<p class="note">The rows to look at next, first {{ review.rows|length }};
label them in the exported CSV and read it back as gold labels.</p>{{ table(review) }}
{% else %}<p class="empty">The review queue is empty.</p>{% endif %}
</section>
{% endblock %}
"""

TEMPLATES = {"base.html": BASE, "macros.html": MACROS, "training.html": TRAINING,
             "monitoring.html": MONITORING, "labeling.html": LABELING}


@cache
def template(name: str) -> jinja2.Template:
    """``training.html``, ``monitoring.html`` or ``labeling.html``, compiled once."""
    env = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template(name)
