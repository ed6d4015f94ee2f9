"""A small HTML page, generated from a model's input schema, to try the model by hand.

One field per input column (numbers with their training range, labels as a list of the known ones
that still accepts new text, yes/no, dates, free text), prefilled with a typical row; the page
posts the row to the prediction endpoint and shows the answer, the probabilities and any warning.
No external assets; every value from the model is HTML-escaped.
"""

from __future__ import annotations

import html
import json

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}label{display:block;font-weight:600;margin-top:.8rem}
.hint{font-weight:400;color:#666;font-size:.85rem;margin-left:.4rem}
input,select,textarea{width:100%;padding:.35rem;box-sizing:border-box;font:inherit}
button{margin-top:1.2rem;padding:.5rem 1.4rem;font:inherit;cursor:pointer}
#result{margin-top:1.2rem;padding:1rem;background:#f4f6f8;border-radius:6px;white-space:pre-wrap}
.bar{background:#4c78a8;height:.8rem;display:inline-block;vertical-align:middle;margin-right:.4rem}
.error{color:#b00020}
"""


def _field(index: int, column: dict, value) -> str:
    name = column["name"]
    kind = column["kind"]
    ident = f"field{index}"
    label = html.escape(name)
    attrs = f'id="{ident}" name="{html.escape(name, quote=True)}" data-kind="{kind}"'
    shown = "" if value is None else html.escape(str(value), quote=True)
    if kind == "numeric":
        hint = ""
        if column.get("min") is not None and column.get("max") is not None:
            hint = f"{column['min']:g} to {column['max']:g}"
        if column.get("number_format"):
            hint += f" — written like: {column['number_format']}"
        control = f'<input {attrs} type="text" inputmode="decimal" value="{shown}">'
    elif kind == "categorical":
        options = "".join(
            f'<option value="{html.escape(str(c), quote=True)}">' for c in column.get("categories") or []
        )
        hint = f"{column.get('n_categories', len(column.get('categories') or []))} known labels"
        control = f'<input {attrs} list="{ident}-list" value="{shown}"><datalist id="{ident}-list">{options}</datalist>'
    elif kind == "boolean":
        hint = "yes / no"
        selected = {True: "true", False: "false"}.get(value, "")
        choices = "".join(
            f'<option value="{v}"{" selected" if v == selected else ""}>{t}</option>'
            for v, t in (("true", "yes"), ("false", "no"), ("", "(missing)"))
        )
        control = f"<select {attrs}>{choices}</select>"
    elif kind == "datetime":
        hint = f"format {column['date_format']}" if column.get("date_format") else "a date, e.g. 2024-01-31"
        control = f'<input {attrs} type="text" value="{shown}" placeholder="2024-01-31">'
    else:
        hint = "free text"
        control = f'<textarea {attrs} rows="2">{shown}</textarea>'
    return f'<label for="{ident}">{label}<span class="hint">{html.escape(hint)}</span></label>{control}'


def playground_page(ref: str, details: dict, *, token: str | None = None) -> str:
    """The page for one model reference (details as returned by `GET /models/{ref}`)."""
    example = (details.get("example") or {}).get("inputs") or {}
    fields = "\n".join(
        _field(i, column, example.get(column["name"])) for i, column in enumerate(details.get("inputs") or [])
    )
    title = f"{ref} — {details.get('task') or 'model'} ({details.get('ref')})"
    endpoint = f"/api/v1/predict/{ref}"
    script_data = json.dumps({"endpoint": endpoint, "token": token}).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>Try {html.escape(ref)}</h1>
<p>{html.escape(details.get("task") or "")} model, version {html.escape(str(details.get("ref")))}. Fill the fields (empty means missing) and press Predict.</p>
<form id="row">{fields}
<button type="submit">Predict</button></form>
<div id="result">The answer appears here.</div>
<script>
const CONFIG = {script_data};
function readRow() {{
  const row = {{}};
  for (const el of document.querySelectorAll('#row [name]')) {{
    const v = el.value.trim();
    if (v === '') {{ row[el.name] = null; continue; }}
    if (el.dataset.kind === 'boolean') {{ row[el.name] = v === 'true'; continue; }}
    if (el.dataset.kind === 'numeric' && /^[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?$/.test(v)) {{ row[el.name] = Number(v); continue; }}
    row[el.name] = v;
  }}
  return row;
}}
function show(answer) {{
  const out = document.getElementById('result');
  out.textContent = '';
  const line = (text, cls) => {{ const d = document.createElement('div'); d.textContent = text; if (cls) d.className = cls; out.appendChild(d); return d; }};
  if (answer.error) {{ line(answer.error.message, 'error'); return; }}
  line('prediction: ' + JSON.stringify(answer.predictions[0]));
  line('answered by ' + answer.version + (answer.variant ? ' (' + answer.variant + ')' : '') + ', request ' + answer.request_id);
  if (answer.probabilities) {{
    for (const [cls, p] of Object.entries(answer.probabilities[0])) {{
      const d = line('');
      const bar = document.createElement('span'); bar.className = 'bar'; bar.style.width = (p * 200) + 'px';
      d.appendChild(bar); d.appendChild(document.createTextNode(cls + ': ' + p.toFixed(4)));
    }}
  }}
  for (const w of answer.warnings || []) line('warning: ' + w);
}}
document.getElementById('row').addEventListener('submit', async (event) => {{
  event.preventDefault();
  const headers = {{'Content-Type': 'application/json'}};
  if (CONFIG.token) headers['Authorization'] = 'Bearer ' + CONFIG.token;
  try {{
    const response = await fetch(CONFIG.endpoint, {{method: 'POST', headers, body: JSON.stringify({{inputs: readRow()}})}});
    show(await response.json());
  }} catch (err) {{ show({{error: {{message: String(err)}}}}); }}
}});
</script>
</body></html>
"""
