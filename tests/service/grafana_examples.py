"""Grafana's webhook contact-point payloads, as Grafana's documentation shows them ("Configure the
webhook notifier for Alerting": the JSON body example, with `values`; the v9.3 page shows the same
alerts with `valueString` instead). Tests copy and vary them (resolved, repeated, new fields)."""
import copy

FIRING = {
    "receiver": "My Super Webhook",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {
                "description": "The system has high memory usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone us-1",
            },
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
        {
            "status": "firing",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {
                "description": "The system has high CPU usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone eu-1",
            },
            "startsAt": "2021-10-12T09:56:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:2]  (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = T2\n - team = blue\n - zone = us-1\nAnnotations:\n - description = This is "
               "the alert rule checking the second system\n - runbook_url = https://myrunbook.com\n - summary = This is my "
               "summary\nSource: https://play.grafana.org/alerting/1afz29v7z/edit\nSilence: https://play.grafana.org/alerting/"
               "silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1\n\nLabels:\n - alertname = "
               "T1\n - team = blue\n - zone = eu-1\nAnnotations:\nSource: https://play.grafana.org/alerting/d1rdpdv7k/edit\n"
               "Silence: https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1%2Cteam%3Dblue"
               "%2Czone%3Deu-1\n",
}


def firing():
    return copy.deepcopy(FIRING)


def with_value_string():
    """The v9.3 documentation's variant: valueString instead of values."""
    p = firing()
    for a in p["alerts"]:
        del a["values"]
        a["valueString"] = "[ metric='' labels={} value=14151.331895396988 ]"
    return p


def resolved(index=0, ends_at="2021-10-12T10:01:03.157076+02:00"):
    """The first alert resolved, as Grafana sends it: same fingerprint and startsAt, status and endsAt set."""
    p = firing()
    a = p["alerts"][index]
    a["status"] = "resolved"
    a["endsAt"] = ends_at
    p["alerts"] = [a]
    p["status"] = "resolved"
    p["state"] = "ok"
    p["title"] = "[RESOLVED]  (blue)"
    return p


def alert(fingerprint, labels, starts_at, status="firing", ends_at="0001-01-01T00:00:00Z", **extra):
    return {"status": status, "labels": labels, "annotations": {"summary": f"alert {fingerprint}"},
            "startsAt": starts_at, "endsAt": ends_at, "generatorURL": "http://grafana.local/alerting/x/edit",
            "fingerprint": fingerprint, "silenceURL": "", "dashboardURL": "", "panelURL": "http://grafana.local/d/x?viewPanel=1",
            "values": {"A": 1}, **extra}


def payload(alerts, status="firing"):
    return {"receiver": "tidewatch-service", "status": status, "orgId": 1, "alerts": alerts, "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://grafana.local/", "version": "1",
            "groupKey": "{}:{}", "truncatedAlerts": 0, "title": "t", "state": "alerting", "message": "m"}
