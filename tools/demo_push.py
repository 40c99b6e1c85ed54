#!/usr/bin/env python3
"""Push CSV rows from stdin to tidewatch-service, for tools/demo.sh (standard library only).

  demo_push.py metrics URL TOKEN   rows ts,satellite,metric,value  -> POST /v1/metrics (JSON batches)
  demo_push.py logs URL TOKEN      rows ts,pipeline,level,message  -> POST /v1/logs (JSON lines)
  demo_push.py show URL TOKEN      print the anomalies the service serves back, and explain the strongest
  demo_push.py alert URL TOKEN     post a Grafana webhook alert (its documented format) for the
                                   strongest spike, and print the notification stored for it
"""
import csv
import json
import re
import sys
import urllib.request

BATCH = 5000


def rfc3339(ts):
    """psql's timestamptz text ('2026-12-02 23:59:00+00') as RFC 3339 ('2026-12-02T23:59:00+00:00')."""
    return re.sub(r"([+-]\d\d)$", r"\1:00", ts.replace(" ", "T"))


def post(url, token, path, body, ctype):
    req = urllib.request.Request(url + path, data=body.encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"{}")


def get(url, token, path):
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def push(kind, url, token):
    rows = list(csv.reader(sys.stdin))
    total = 0
    for i in range(0, len(rows), BATCH):
        chunk = rows[i:i + BATCH]
        if kind == "metrics":
            body = json.dumps([{"metric": m, "labels": {"satellite": s}, "ts": rfc3339(ts), "value": float(v)}
                               for ts, s, m, v in chunk if v != ""])
            total += post(url, token, "/v1/metrics", body, "application/json")["inserted"]
        else:
            body = "\n".join(json.dumps({"ts": rfc3339(ts), "source": p, "labels": {"level": lvl}, "message": msg})
                             for ts, p, lvl, msg in chunk)
            total += post(url, token, "/v1/logs", body, "application/x-ndjson")["accepted"]
    print(f"   sent {len(rows)} {'points' if kind == 'metrics' else 'log lines'} in "
          f"{(len(rows) + BATCH - 1) // BATCH} requests; {total} written")


def show(url, token):
    page = get(url, token, "/v1/anomalies?limit=8")["anomalies"]
    print(f"   {'id':>5}  {'started_at':20}  {'kind':12} {'severity':8} {'score':>5}  series")
    for a in page:
        series = a["metric"] + " " + json.dumps(a["labels"]) if a["metric"] else json.dumps(a["series"])
        print(f"   {a['id']:>5}  {a['started_at']:20}  {a['kind']:12} {a['severity']:8} {a['score'] or 0:5.2f}  {series}")
    spikes = [a for a in get(url, token, "/v1/anomalies?kind=spike,dip,level_shift&limit=200")["anomalies"] if a["metric"]]
    if spikes:
        best = max(spikes, key=lambda a: a["score"] or 0)
        e = get(url, token, f"/v1/anomalies/{best['id']}")
        print(f"\n   GET /v1/anomalies/{best['id']}: why?")
        for r in e["explanation"]:
            print(f"   {r['rank']}. {r['reason']}")
    errors = get(url, token, "/v1/logs/errors")["errors"][:5]
    print("\n   GET /v1/logs/errors: error classes of the pushed ETL log")
    for x in errors:
        print(f"   {x['count']:>6}  {x['category']:14} {(x['template'] or '')[:70]}")


def alert(url, token):
    spikes = [a for a in get(url, token, "/v1/anomalies?kind=spike,dip,level_shift&limit=200")["anomalies"] if a["metric"]]
    if not spikes:
        print("   no episode to alert on")
        return
    best = max(spikes, key=lambda a: a["score"] or 0)
    labels = {"alertname": "Tidewatch anomaly episode", "severity": best["severity"], "metric": best["metric"],
              **best["labels"]}
    payload = {
        "receiver": "tidewatch", "status": "firing", "orgId": 1, "externalURL": "http://localhost:3000/",
        "version": "1", "groupKey": "{}:{alertname=\"Tidewatch anomaly episode\"}", "truncatedAlerts": 0,
        "groupLabels": {"alertname": labels["alertname"]}, "commonLabels": labels, "commonAnnotations": {},
        "title": "[FIRING:1] Tidewatch anomaly episode", "state": "alerting", "message": "",
        "alerts": [{
            "status": "firing", "labels": labels,
            "annotations": {"summary": f"{best['kind']} on {best['metric']} {json.dumps(best['labels'])}"},
            "startsAt": best["started_at"], "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://localhost:3000/alerting/grafana/tw-anomaly/view",
            "fingerprint": f"demo{best['id']:012d}", "silenceURL": "", "dashboardURL": "", "panelURL": "",
            "values": {"A": best["score"] or 0}, "valueString": f"[ var='A' value={best['score']} ]",
        }],
    }
    body = json.dumps(payload)
    for attempt in (1, 2):  # the second is Grafana's repeat: stored once
        post(url, token, "/v1/alerts/grafana", body, "application/json")
    print("   POST /v1/alerts/grafana twice (Grafana repeats an alert): GET /v1/notifications has it once")
    for n in get(url, token, "/v1/notifications")["notifications"][:3]:
        print(f"   {n.get('status')} {n.get('subject')}  (received {1 + (n.get('repeats') or 0)} times, "
              f"{len(n.get('episodes') or [])} linked episode(s))")
        for line in (n.get("message") or "").splitlines()[:6]:
            print(f"     {line}")


if __name__ == "__main__":
    kind, url, token = sys.argv[1:4]
    {"show": show, "alert": alert}.get(kind, lambda u, t: push(kind, u, t))(url, token)
