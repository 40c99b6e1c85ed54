#!/usr/bin/env python3
"""Push CSV rows from stdin to tidewatch-service, for tools/demo.sh (standard library only).

  demo_push.py metrics URL TOKEN   rows ts,satellite,metric,value  -> POST /v1/metrics (JSON batches)
  demo_push.py logs URL TOKEN      rows ts,pipeline,level,message  -> POST /v1/logs (JSON lines)
  demo_push.py show URL TOKEN      print the anomalies the service serves back, and explain the strongest
"""
import csv
import json
import sys
import urllib.request

BATCH = 5000


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
            body = json.dumps([{"metric": m, "labels": {"satellite": s}, "ts": ts.replace(" ", "T"), "value": float(v)}
                               for ts, s, m, v in chunk if v != ""])
            total += post(url, token, "/v1/metrics", body, "application/json")["inserted"]
        else:
            body = "\n".join(json.dumps({"ts": ts.replace(" ", "T"), "source": p, "labels": {"level": lvl}, "message": msg})
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


if __name__ == "__main__":
    kind, url, token = sys.argv[1:4]
    show(url, token) if kind == "show" else push(kind, url, token)
