#!/usr/bin/env python3
"""Checks a Grafana dashboard against Prometheus and a live sysmon daemon.

usage: check-dashboard.py DASHBOARD.json METRICS.txt WORKDIR

- the file is valid JSON with the variables `instance` and `user`, and every panel has a query;
- every query (panels and variables, Grafana's $variables replaced by values of the right kind)
  parses: they are written to WORKDIR/dashboard.rules.yml as recording rules and given to
  `promtool check rules`;
- every metric a query reads is one that the daemon's /metrics (METRICS.txt) declares, or one of
  Prometheus's own (`up`, `ALERTS`), so a renamed metric fails here instead of in a dashboard.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

PROMETHEUS_OWN = {"up", "ALERTS"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


def fail(msg):
    print(f"check-dashboard: {msg}", file=sys.stderr)
    sys.exit(1)


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def substitute(expr):
    """Grafana's variables as Prometheus would receive them."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}", "5m", expr)
    return re.sub(r"\$\{?(\w+)(:\w+)?\}?", ".*", expr)


def metric_names(expr):
    """The metric names an expression reads: identifiers outside strings, label matchers, ranges
    and grouping clauses that are not functions, keywords or numbers."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)\s*(\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def main():
    if len(sys.argv) != 4:
        fail(__doc__)
    dash_path, metrics_path, work = map(Path, sys.argv[1:])
    try:
        dash = json.loads(dash_path.read_text())
    except json.JSONDecodeError as e:
        fail(f"{dash_path}: not valid JSON: {e}")

    exprs = []  # (where, expr)
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    for name in ("instance", "user"):
        if name not in variables:
            fail(f"no `{name}` variable")
    for v in variables.values():
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q.strip())
        if not m:
            fail(f"variable {v['name']}: unsupported query {q!r}")
        exprs.append((f"variable {v['name']}", m.group(1)))
    count = 0
    for p in panels(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        count += 1
        targets = [t for t in p.get("targets", []) if t.get("expr")]
        if not targets:
            fail(f"panel {p.get('title')!r} has no query")
        for t in targets:
            exprs.append((f"panel {p['title']!r} ({t['refId']})", t["expr"]))

    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": substitute(e)} for i, (_, e) in enumerate(exprs)
    ]}]}
    rules_path = work / "dashboard.rules.yml"
    rules_path.write_text(json.dumps(rules, indent=1))  # JSON is YAML
    r = subprocess.run(["promtool", "check", "rules", str(rules_path)], capture_output=True, text=True)
    if r.returncode != 0:
        for i, (where, e) in enumerate(exprs):
            if f"query_{i}" in r.stdout + r.stderr:
                print(f"  {where}: {e}", file=sys.stderr)
        fail(f"promtool rejects a query:\n{r.stdout}{r.stderr}")

    exported = set(re.findall(r"^# TYPE (\S+) ", metrics_path.read_text(), re.M))
    if not exported:
        fail(f"{metrics_path} declares no metric")
    used = set()
    for where, e in exprs:
        for name in metric_names(e):
            used.add(name)
            if name not in exported and name not in PROMETHEUS_OWN:
                fail(f"{where} reads {name}, which the daemon does not export")
    print(f"dashboard ok: {count} panels, {len(exprs)} queries parse, {len(used)} metrics, all exported")


main()
