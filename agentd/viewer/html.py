"""HTML building blocks: escaping, the page shell, and syntax highlighting for rules and diffs.

Everything shown comes from model output or task content, so every text is escaped and the
page runs under a Content-Security-Policy that allows no network access at all: styles and the
one script are inline (the script is allowed by its hash), and nothing is fetched — the site
opens from ``file://`` with no server and no CDN.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re

MAX_TEXT = 20_000  # characters of one shown text; pages stay small whatever a step holds

CSS = """
:root{--bg:#fff;--fg:#1d2330;--mute:#687185;--line:#e3e6ec;--ok:#17803d;--bad:#b42318;
--add:#e6ffec;--del:#ffebe9;--hunk:#eef3ff;--code:#f6f8fa;--acc:#3157d5}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:var(--fg);
background:var(--bg)}header{padding:10px 20px;border-bottom:1px solid var(--line);
display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}header h1{font-size:17px;margin:0}
main{padding:16px 20px;max-width:1200px}a{color:var(--acc);text-decoration:none}
a:hover{text-decoration:underline}table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--mute);font-weight:600}.crumbs{color:var(--mute)}.num{text-align:right;
font-variant-numeric:tabular-nums}.badge{display:inline-block;padding:0 6px;border-radius:9px;
font-size:12px;border:1px solid currentColor}.ok{color:var(--ok)}.bad{color:var(--bad)}
.mute{color:var(--mute)}pre{background:var(--code);padding:8px 10px;overflow:auto;
border-radius:6px;margin:4px 0;white-space:pre-wrap;word-break:break-word}
pre.diff{white-space:pre}.diff .add{background:var(--add)}.diff .del{background:var(--del)}
.diff .hunk{background:var(--hunk);color:var(--mute)}.diff .hdr{font-weight:600}
.diff span{display:block}.y-key{color:#0b5cad}.y-str{color:#0a7a3b}.y-meta{color:#a1368a;
font-weight:600}.y-com{color:var(--mute)}.step{border:1px solid var(--line);border-radius:8px;
margin:12px 0}.step>summary{padding:8px 12px;cursor:pointer;display:flex;gap:12px;
align-items:baseline}.step[open]>summary{border-bottom:1px solid var(--line)}
.step .body{padding:4px 12px 12px}.cols{display:grid;grid-template-columns:1fr 1fr;gap:12px}
h3{font-size:13px;margin:12px 0 2px;color:var(--mute);text-transform:uppercase}
nav.filters a,nav.pages a{margin-right:10px}nav .on{font-weight:700;color:var(--fg)}
.hidden{display:none}
"""

# Opens the step named in the address (#step-N) and filters rows of tables marked
# data-filterable by their data-tags, without any network access.
SCRIPT = """
function openStep(){var id=location.hash.slice(1);var el=id&&document.getElementById(id);
if(el&&el.tagName==='DETAILS'){el.open=true;el.scrollIntoView();}}
window.addEventListener('hashchange',openStep);document.addEventListener('DOMContentLoaded',
function(){openStep();document.querySelectorAll('[data-filter]').forEach(function(b){
b.addEventListener('click',function(e){e.preventDefault();var tag=b.dataset.filter;
document.querySelectorAll('[data-filter]').forEach(function(o){o.classList.toggle('on',o===b)});
document.querySelectorAll('tr[data-tags]').forEach(function(tr){tr.classList.toggle('hidden',
tag!=='all'&&tr.dataset.tags.split(' ').indexOf(tag)<0)});});});});
"""

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = ("default-src 'none'; style-src 'unsafe-inline'; "
       f"script-src 'sha256-{_SCRIPT_HASH}'; img-src data:; base-uri 'none'; form-action 'none'")


def esc(text: object) -> str:
    """Text as HTML, quotes included (safe inside attributes too)."""
    return html.escape(str(text), quote=True)


def cap(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters not shown)"


def page(title: str, crumbs: str, body: str) -> str:
    """A whole page: ``crumbs`` and ``body`` are HTML already escaped by the caller."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
        f"<body><header><h1>{esc(title)}</h1><span class=crumbs>{crumbs}</span></header>"
        f"<main>{body}</main></body></html>"
    )


def link(href: str, text: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<a href="{esc(href)}"{klass}>{esc(text)}</a>'


def badge(ok: bool, yes: str = "verified", no: str = "failed") -> str:
    return f'<span class="badge {"ok" if ok else "bad"}">{esc(yes if ok else no)}</span>'


def pre(text: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<pre{klass}>{esc(cap(text))}</pre>"


_DIFF_KINDS = (("+++", "hdr"), ("---", "hdr"), ("@@", "hunk"), ("+", "add"), ("-", "del"))


def diff_block(diff: str) -> str:
    """A unified diff, each line marked as header, hunk, addition or deletion."""
    lines = []
    # Escaped once as a whole: escaping never touches the leading +, - or @ of a line.
    for line in esc(cap(diff)).splitlines():
        kind = next((k for prefix, k in _DIFF_KINDS if line.startswith(prefix)), "ctx")
        lines.append(f'<span class="{kind}">{line or " "}</span>')
    return f'<pre class="diff">{"".join(lines)}</pre>'


_YAML_TOKEN = re.compile(
    r"(?P<com>#.*$)|(?P<key>^\s*(?:-\s+)?[A-Za-z_][\w.-]*(?=:(?:\s|$)))"
    r"|(?P<str>\"(?:[^\"\\]|\\.)*\"|'[^']*')|(?P<meta>\$\$\$[A-Z_][A-Z0-9_]*|\$[A-Z_][A-Z0-9_]*)"
)


def highlight_yaml(text: str) -> str:
    """An ast-grep rule with keys, strings, comments and metavariables marked."""
    out = []
    for line in cap(text).splitlines():
        pos, parts = 0, []
        for m in _YAML_TOKEN.finditer(line):
            parts.append(esc(line[pos:m.start()]))
            parts.append(f'<span class="y-{m.lastgroup}">{esc(m.group())}</span>')
            pos = m.end()
        parts.append(esc(line[pos:]))
        out.append("".join(parts))
    return '<pre class="yaml">' + "\n".join(out) + "</pre>"


def highlight_pattern(text: str) -> str:
    """A pattern or rewrite with its metavariables marked."""
    meta = re.compile(r"\$\$\$[A-Z_][A-Z0-9_]*|\$[A-Z_][A-Z0-9_]*")
    shown, pos, parts = cap(text), 0, []
    for m in meta.finditer(shown):
        parts += [esc(shown[pos:m.start()]), f'<span class="y-meta">{esc(m.group())}</span>']
        pos = m.end()
    return "<pre>" + "".join(parts) + esc(shown[pos:]) + "</pre>"
