#!/usr/bin/env python3
"""Push CSV rows from stdin to tidewatch-service, for tools/demo.sh (standard library only).

  demo_push.py metrics URL TOKEN   rows ts,satellite,metric,value  -> POST /v1/metrics (JSON batches)
  demo_push.py logs URL TOKEN      rows ts,pipeline,level,message  -> POST /v1/logs (JSON lines)
  demo_push.py show URL TOKEN      print the anomalies the service serves back, and explain the strongest
  demo_push.py alert URL TOKEN     post a Grafana webhook alert (its documented format) for the
                                   strongest spike, and print the notification stored for it
  demo_push.py receiver PORT FILE  a local receiver standing in for Telegram's Bot API and a webhook:
                                   each POST is appended to FILE as a JSON line (runs until killed)
  demo_push.py delivered URL TOKEN FILE
                                   wait for the latest notification's deliveries, print what the
                                   receiver got, then send a test message (POST /v1/notifications/test)
"""
import csv
import http.server
import json
import re
import sys
import time
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


def receiver(port, path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            # The bot token is in Telegram's path: not written down.
            shown = re.sub(r"/bot[^/]+/", "/bot<token>/", self.path)
            with open(path, "a") as f:
                f.write(json.dumps({"path": shown, "key": self.headers.get("Idempotency-Key"), "body": body}) + "\n")
            if self.path.endswith("/sendMessage"):
                answer = json.dumps({"ok": True, "result": {"message_id": 1}}).encode()
            else:
                answer = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


def delivered(url, token, path):
    latest = get(url, token, "/v1/notifications?limit=1")["notifications"]
    if not latest:
        print("   no notification to deliver")
        return
    n = latest[0]
    for _ in range(100):
        n = get(url, token, "/v1/notifications?limit=1")["notifications"][0]
        if n["deliveries"] and all(d["status"] in ("delivered", "dead") for d in n["deliveries"]):
            break
        time.sleep(0.2)
    print(f"   GET /v1/notifications: notification {n['id']} delivered through its routes:")
    for d in n["deliveries"]:
        print(f"     {d['route']:14} {d['kind']:9} {d['status']:9} after {d['attempts']} attempt(s), "
              f"Idempotency-Key {d['idempotency_key']}")
    print("   what the local receiver got:")
    with open(path) as f:
        got = [json.loads(line) for line in f]
    for g in got:
        body = g["body"]
        print(f"     POST {g['path']}  (Idempotency-Key {g['key']})")
        text = body.get("text") if isinstance(body, dict) and "text" in body else (body or {}).get("message", "")
        if isinstance(body, dict) and "chat_id" in body:
            print(f"       chat_id {body['chat_id']}, text:")
        elif isinstance(body, dict):
            print(f"       JSON with {', '.join(sorted(body)[:8])}, ...; its message:")
        for line in (text or "").splitlines()[:9]:
            print(f"       | {line}")
    r = post(url, token, "/v1/notifications/test", json.dumps({"route": "telegram-demo"}), "application/json")
    print(f"   POST /v1/notifications/test {{\"route\": \"telegram-demo\"}}: {r['status']} "
          f"(HTTP {r['http_status']}, {r['reply']}, {r['duration_ms']} ms)")


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "receiver":
        receiver(*sys.argv[2:4])
    elif kind == "delivered":
        delivered(*sys.argv[2:5])
    else:
        url, token = sys.argv[2:4]
        {"show": show, "alert": alert}.get(kind, lambda u, t: push(kind, u, t))(url, token)
