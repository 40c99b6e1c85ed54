"""Notification channels besides the generic webhook: Telegram's Bot API, a Slack-compatible
incoming webhook and e-mail over SMTP, each against a local receiver this test starts (an HTTP
server that plays the Bot API or Slack and records every request; an SMTP server speaking the
protocol's dialogue by hand), plus POST /v1/notifications/test and the routes' validation.

Oracles: what the receivers recorded (paths, JSON bodies, the e-mail parsed by Python's email
package), the notification's subject and message in tidewatch.notifications, times formatted by
Python's zoneinfo, and psql counts of the outbox and its attempts."""
import base64
import email
import email.policy
import http.server
import json
import os
import re
import socketserver
import subprocess
import threading
import time
import tomllib
import unittest
import urllib.parse
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import grafana_examples as gx
from svctest import READ_TOKEN, WRITE_TOKEN, BIN, Service, fresh_database, psql, require_service, service_dsn, wait_for

PATH = "/v1/alerts/grafana"
BOT_TOKEN = "4242:AAbot-token_SECRET"
CHAT = -100777
SLACK_PATH = "/services/T000/B000/slack-SECRET"
SMTP_USER, SMTP_PASSWORD = "tw-mailer", "smtp-pw-SECRET"


class Hook:
    """An HTTP receiver for Telegram and Slack deliveries. Every request is recorded as (time,
    path, headers, raw body, JSON body). `scripts` maps a marker to canned answers
    [(status, headers, body bytes)]: a request whose body contains the marker gets the next one;
    others get the default answer of their path (Telegram's ok with a message id, Slack's "ok")."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.scripts = {}
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                text = raw.decode("utf-8", "replace")
                with hook.lock:
                    hook.requests.append((time.time(), self.path, {k.lower(): v for k, v in self.headers.items()}, raw, body))
                    answer = None
                    for marker, script in hook.scripts.items():
                        if marker in text and script:
                            answer = script.pop(0)
                            break
                    n = len(hook.requests)
                if answer is None:
                    if "/sendMessage" in self.path:
                        answer = (200, {"Content-Type": "application/json"},
                                  json.dumps({"ok": True, "result": {"message_id": 1000 + n, "chat": {"id": CHAT}}}).encode())
                    else:
                        answer = (200, {"Content-Type": "text/plain"}, b"ok")
                status, headers, data = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def matching(self, marker):
        with self.lock:
            return [r for r in self.requests if marker in r[3].decode("utf-8", "replace")]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Smtp:
    """A local SMTP server: EHLO (offering AUTH PLAIN), AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP,
    QUIT. Accepted messages are kept as (envelope from, envelope recipients, auth identity, raw
    message). `scripts` maps a marker (found in the message) to SMTP replies given instead of the
    final 250 for the next messages that contain it, e.g. ["451 4.3.0 try later"]."""

    def __init__(self):
        self.lock = threading.Lock()
        self.accepted = []
        self.sessions = 0
        self.scripts = {}
        smtp = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                with smtp.lock:
                    smtp.sessions += 1
                self.reply("220 localhost tidewatch-test ESMTP")
                sender, rcpts, who = None, [], None
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250-localhost\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SMTPUTF8\r\n")
                    elif verb == "AUTH":
                        parts = cmd.split()
                        if len(parts) == 3 and parts[1].upper() == "PLAIN":
                            _, user, pw = base64.b64decode(parts[2]).decode().split("\0")
                        else:
                            self.reply("334 ")
                            _, user, pw = base64.b64decode(self.rfile.readline().strip()).decode().split("\0")
                        if (user, pw) == (SMTP_USER, SMTP_PASSWORD):
                            who = user
                            self.reply("235 2.7.0 Authentication successful")
                        else:
                            self.reply("535 5.7.8 Authentication credentials invalid")
                    elif verb == "MAIL":
                        sender, rcpts = cmd.split(":", 1)[1].strip().split()[0].strip("<>"), []
                        self.reply("250 2.1.0 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd.split(":", 1)[1].strip().split()[0].strip("<>"))
                        self.reply("250 2.1.5 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while True:
                            d = self.rfile.readline()
                            if d in (b".\r\n", b".\n", b""):
                                break
                            lines.append(d[1:] if d.startswith(b"..") else d)
                        raw = b"".join(lines)
                        text = raw.decode("utf-8", "replace")
                        answer = None
                        with smtp.lock:
                            for marker, script in smtp.scripts.items():
                                if marker in text and script:
                                    answer = script.pop(0)
                                    break
                            if answer is None:
                                smtp.accepted.append((sender, list(rcpts), who, raw))
                                n = len(smtp.accepted)
                        self.reply(answer or f"250 2.0.0 Ok: queued as TW{n}")
                    elif verb == "RSET":
                        sender, rcpts = None, []
                        self.reply("250 2.0.0 OK")
                    elif verb == "NOOP":
                        self.reply("250 2.0.0 OK")
                    elif verb == "QUIT":
                        self.reply("221 2.0.0 Bye")
                        return
                    else:
                        self.reply("502 5.5.2 Command not recognized")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server.server_address[1]

    def messages(self, marker):
        with self.lock:
            return [(f, r, w, email.message_from_bytes(raw, policy=email.policy.default))
                    for f, r, w, raw in self.accepted if marker.encode() in raw]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def outbox_rows(fingerprint):
    """(idempotency_key, status, attempts, last_http_status, last_error) of a notification's deliveries."""
    return psql("SELECT o.idempotency_key, o.status, o.attempts, coalesce(o.last_http_status, 0), coalesce(o.last_error, '') "
                "FROM tidewatch.notification_outbox o JOIN tidewatch.notifications n ON n.id = o.notification_id "
                f"WHERE n.fingerprint = '{fingerprint}' ORDER BY o.id")


def attempts(key):
    return psql("SELECT a.attempt, a.outcome, coalesce(a.http_status, 0), coalesce(a.error, ''), extract(epoch FROM a.at) "
                "FROM tidewatch.notification_attempts a JOIN tidewatch.notification_outbox o ON o.id = a.outbox_id "
                f"WHERE o.idempotency_key = '{key}' ORDER BY a.attempt")


def settled(fingerprint):
    rows = outbox_rows(fingerprint)
    return bool(rows) and all(r[1] in ("delivered", "dead") for r in rows)


def stored_text(fingerprint):
    """(subject, message) as stored: what every channel must send."""
    (row,) = psql("SELECT json_build_array(subject, message)::text FROM tidewatch.notifications "
                  f"WHERE fingerprint = '{fingerprint}'")
    return tuple(json.loads(row[0]))


@require_service
class Channels(unittest.TestCase):
    """One service with a route of each kind; each alert carries a `route` label that picks one."""

    @classmethod
    def setUpClass(cls):
        fresh_database()
        cls.hook = Hook()
        cls.smtp = Smtp()
        cls.routes = [
            {"name": "tg", "kind": "telegram", "bot_token": BOT_TOKEN, "chat_id": CHAT,
             "base_url": cls.hook.base + "/tgapi", "matchers": ["route=tg"], "max_attempts": 4},
            {"name": "slack", "kind": "slack", "url": cls.hook.base + SLACK_PATH, "blocks": True,
             "matchers": ["route=slack"], "max_attempts": 3},
            {"name": "mail", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": cls.smtp.port, "smtp_tls": "none",
             "smtp_username": SMTP_USER, "smtp_password": SMTP_PASSWORD,
             "from": "Tidewatch <alerts@tidewatch.example>", "to": ["oncall@example.net", "Ops Desk <ops@example.org>"],
             "matchers": ["route=mail"], "max_attempts": 3},
            # The local server offers no STARTTLS: a route that requires it must not send.
            {"name": "mail-starttls", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": cls.smtp.port,
             "smtp_tls": "starttls", "smtp_username": SMTP_USER, "smtp_password": SMTP_PASSWORD,
             "from": "tw@tidewatch.example", "to": ["oncall@example.net"], "matchers": ["route=never"]},
        ]
        cls.svc = Service(read_tokens=READ_TOKEN, alert_routes=json.dumps(cls.routes), alert_retry_base="200ms",
                          alert_retry_max="1s", alert_delivery_timeout="3s", ask_timezone="Europe/Paris")

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()
        cls.hook.stop()
        cls.smtp.stop()

    def send(self, fingerprint, route, starts="2026-01-15T07:21:00Z", status="firing", ends=None, **labels):
        a = gx.alert(fingerprint, {"alertname": f"Alert {fingerprint}", "route": route, "satellite": "SAT9", **labels},
                     starts, status=status, ends_at=ends or "0001-01-01T00:00:00Z")
        a["annotations"] = {"summary": f"summary of {fingerprint}"}
        status_, _, body = self.svc.post_json(PATH, gx.payload([a]))
        self.assertEqual((status_, body["stored"]), (200, 1), body)
        self.assertTrue(wait_for(lambda: settled(fingerprint), 30), outbox_rows(fingerprint))
        return body["notifications"][0]

    def assert_useful(self, text, fingerprint, local_start):
        """What, where, since when (in the configured zone), how bad, links: all in the text."""
        for part in (f"Alert {fingerprint}", "satellite=SAT9", f"summary of {fingerprint}", f"Since: {local_start}",
                     "Panel: http://grafana.local/d/x?viewPanel=1"):
            self.assertIn(part, text)

    def test_telegram_send_message(self):
        nid = self.send("tg-1", "tg")
        self.assertEqual(outbox_rows("tg-1")[0][1:4], ["delivered", "1", "200"])
        (req,) = self.hook.matching("tg-1")
        _, path, headers, _, body = req
        self.assertEqual(path, f"/tgapi/bot{BOT_TOKEN}/sendMessage")
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["idempotency-key"], f"tidewatch-{nid}-tg")
        self.assertEqual(body["chat_id"], CHAT)
        subject, message = stored_text("tg-1")
        self.assertEqual(body["text"], subject + "\n" + message)
        self.assertTrue(body["text"].startswith("[FIRING] Alert tg-1 ("), body["text"])
        # 07:21 UTC on 15 January is 08:21 in Paris (CET, UTC+1), by Python's own tz database.
        local = datetime(2026, 1, 15, 7, 21, tzinfo=timezone.utc).astimezone(ZoneInfo("Europe/Paris"))
        self.assert_useful(body["text"], "tg-1", local.strftime("%Y-%m-%d %H:%M %Z"))
        self.assertNotIn(BOT_TOKEN, self.svc.log)

    def test_telegram_summer_time_and_resolved(self):
        self.send("tg-2", "tg", starts="2026-07-15T07:21:00Z", status="resolved", ends="2026-07-15T08:05:00Z")
        (req,) = self.hook.matching("tg-2")
        text = req[4]["text"]
        paris = ZoneInfo("Europe/Paris")
        start = datetime(2026, 7, 15, 7, 21, tzinfo=timezone.utc).astimezone(paris)
        end = datetime(2026, 7, 15, 8, 5, tzinfo=timezone.utc).astimezone(paris)
        self.assertTrue(text.startswith("[RESOLVED] Alert tg-2"), text)
        self.assertIn("Since: " + start.strftime("%Y-%m-%d %H:%M %Z"), text)
        self.assertIn("Resolved: " + end.strftime("%Y-%m-%d %H:%M %Z"), text)
        self.assertIn("CEST", text)

    def test_telegram_429_retry_after_in_the_body_is_honoured(self):
        # No Retry-After header: only the body's parameters.retry_after can explain a 2 s wait
        # (the service's own backoff is 0.2 s at most 1 s).
        self.hook.scripts["tg-429"] = [(429, {"Content-Type": "application/json"}, json.dumps(
            {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 2",
             "parameters": {"retry_after": 2}}).encode())]
        nid = self.send("tg-429", "tg")
        key = f"tidewatch-{nid}-tg"
        self.assertEqual(outbox_rows("tg-429")[0][1:5], ["delivered", "2", "200", ""])
        att = attempts(key)
        self.assertEqual([(a[0], a[1], a[2]) for a in att], [("1", "retry", "429"), ("2", "delivered", "200")])
        self.assertIn("Too Many Requests: retry after 2", att[0][3])
        reqs = self.hook.matching("tg-429")
        self.assertEqual(len(reqs), 2)
        self.assertGreaterEqual(reqs[1][0] - reqs[0][0], 1.9)

    def test_telegram_refusal_is_final_and_recorded_without_the_token(self):
        self.hook.scripts["tg-bad"] = [(400, {"Content-Type": "application/json"}, json.dumps(
            {"ok": False, "error_code": 400, "description": f"Bad Request: chat not found (bot{BOT_TOKEN})"}).encode())]
        self.send("tg-bad", "tg")
        (row,) = outbox_rows("tg-bad")
        self.assertEqual(row[1:4], ["dead", "1", "400"])
        self.assertIn("Telegram error 400: Bad Request: chat not found", row[4])
        self.assertNotIn(BOT_TOKEN, row[4])
        self.assertIn("<redacted>", row[4])
        # ok:false with HTTP 200 is an error too (retried: no error code says it is final).
        self.hook.scripts["tg-notok"] = [(200, {"Content-Type": "application/json"},
                                          json.dumps({"ok": False, "description": "flood wait"}).encode())]
        nid = self.send("tg-notok", "tg")
        att = attempts(f"tidewatch-{nid}-tg")
        self.assertEqual([(a[1], a[2]) for a in att], [("retry", "200"), ("delivered", "200")])
        self.assertIn("flood wait", att[0][3])

    def test_slack_text_and_blocks(self):
        nid = self.send("sl-1", "slack", team="a&b<c>")
        (req,) = self.hook.matching("sl-1")
        _, path, headers, _, body = req
        self.assertEqual(path, SLACK_PATH)
        self.assertEqual(headers["idempotency-key"], f"tidewatch-{nid}-slack")
        subject, message = stored_text("sl-1")
        esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # noqa: E731
        self.assertEqual(body["text"], f"*{esc(subject)}*\n{esc(message)}")
        self.assertIn("team=a&amp;b&lt;c&gt;", body["text"])
        self.assertEqual(body["blocks"][0], {"type": "header", "text": {"type": "plain_text", "text": subject}})
        self.assertEqual(body["blocks"][1]["text"], {"type": "mrkdwn", "text": esc(message)})
        local = datetime(2026, 1, 15, 7, 21, tzinfo=timezone.utc).astimezone(ZoneInfo("Europe/Paris"))
        self.assert_useful(subject + "\n" + message, "sl-1", local.strftime("%Y-%m-%d %H:%M %Z"))

    def test_slack_429_retry_after_header_then_dead_after_max_tries(self):
        self.hook.scripts["sl-429"] = [(429, {"Retry-After": "2"}, b"rate_limited")]
        nid = self.send("sl-429", "slack")
        att = attempts(f"tidewatch-{nid}-slack")
        self.assertEqual([(a[1], a[2]) for a in att], [("retry", "429"), ("delivered", "200")])
        self.assertGreaterEqual(float(att[1][4]) - float(att[0][4]), 1.9)
        # Always 503: given up after max_attempts (3), the last error kept.
        self.hook.scripts["sl-dead"] = [(503, {}, b"service unavailable today")] * 10
        nid = self.send("sl-dead", "slack")
        (row,) = outbox_rows("sl-dead")
        self.assertEqual(row[1:4], ["dead", "3", "503"])
        self.assertEqual(row[4], "HTTP 503: service unavailable today")
        self.assertEqual([a[1] for a in attempts(f"tidewatch-{nid}-slack")], ["retry", "retry", "dead"])
        self.assertEqual(len(self.hook.matching("sl-dead")), 3)

    def test_email(self):
        nid = self.send("mail-1", "mail")
        self.assertEqual(outbox_rows("mail-1")[0][1:5], ["delivered", "1", "0", ""])
        ((sender, rcpts, who, m),) = self.smtp.messages("mail-1")
        self.assertEqual(sender, "alerts@tidewatch.example")
        self.assertEqual(sorted(rcpts), ["oncall@example.net", "ops@example.org"])
        self.assertEqual(who, SMTP_USER, "logged in with the route's credentials")
        subject, message = stored_text("mail-1")
        self.assertEqual(m["Subject"], subject)
        self.assertEqual(m["Message-ID"], f"<tidewatch-{nid}-mail@tidewatch.example>")
        self.assertEqual(m["Auto-Submitted"], "auto-generated")
        self.assertEqual(m["From"].addresses[0].addr_spec, "alerts@tidewatch.example")
        self.assertEqual({a.addr_spec for a in m["To"].addresses}, {"oncall@example.net", "ops@example.org"})
        # SMTP carries lines ending in CRLF.
        self.assertEqual(m.get_content().replace("\r\n", "\n").strip(), message.strip())
        local = datetime(2026, 1, 15, 7, 21, tzinfo=timezone.utc).astimezone(ZoneInfo("Europe/Paris"))
        self.assert_useful(m["Subject"] + "\n" + m.get_content(), "mail-1", local.strftime("%Y-%m-%d %H:%M %Z"))

    def test_email_transient_then_permanent_replies(self):
        self.smtp.scripts["mail-451"] = ["451 4.3.0 Mailbox busy, try later"]
        nid = self.send("mail-451", "mail")
        att = attempts(f"tidewatch-{nid}-mail")
        self.assertEqual([a[1] for a in att], ["retry", "delivered"])
        self.assertIn("451", att[0][3])
        self.assertEqual(len(self.smtp.messages("mail-451")), 1)
        self.smtp.scripts["mail-550"] = ["550 5.7.1 Message refused"] * 5
        self.send("mail-550", "mail")
        (row,) = outbox_rows("mail-550")
        self.assertEqual(row[1:3], ["dead", "1"], "a 5xx reply is final")
        self.assertIn("550", row[4])
        self.assertIn("Message refused", row[4])

    def test_notifications_test_endpoint(self):
        # Telegram, with a text of our own.
        status, _, body = self.svc.post_json("/v1/notifications/test", {"route": "tg", "text": "hello from the test ✓"})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["route"], body["kind"], body["status"], body["http_status"], body["error"]),
                         ("tg", "telegram", "delivered", 200, None))
        (req,) = self.hook.matching("hello from the test")
        self.assertEqual(req[4]["text"], "[TEST] Tidewatch test message (route tg)\nhello from the test ✓")
        self.assertEqual(body["reply"], f"message_id {1000 + self.hook.requests.index(req) + 1}")
        self.assertEqual(body["idempotency_key"], f"tidewatch-{body['notification_id']}-tg")
        # E-mail with the default text: the SMTP server's reply comes back.
        status, _, body = self.svc.post_json("/v1/notifications/test", {"route": "mail"})
        self.assertEqual((status, body["status"]), (200, "delivered"), body)
        n = len(self.smtp.accepted)
        self.assertEqual(body["reply"], f"250 2.0.0 Ok: queued as TW{n}")
        ((_, _, _, m),) = self.smtp.messages(body["idempotency_key"])
        self.assertIn('through route "mail" (email)', m.get_content())
        # STARTTLS required but not offered: nothing sent, the password not either.
        sessions = self.smtp.sessions
        status, _, body = self.svc.post_json("/v1/notifications/test", {"route": "mail-starttls", "text": "tls-only"})
        self.assertEqual((status, body["status"], body["reply"]), (200, "dead", None), body)
        self.assertIn("STARTTLS", body["error"].upper())
        self.assertEqual(self.smtp.sessions, sessions + 1, "it connected once")
        self.assertEqual(self.smtp.messages("tls-only"), [])
        # A failing channel: the outcome says so (one try, no retry).
        self.hook.scripts["custom failure text"] = [(500, {}, b"boom")]
        status, _, body = self.svc.post_json("/v1/notifications/test", {"route": "slack", "text": "custom failure text"})
        self.assertEqual((status, body["status"], body["http_status"], body["error"]), (200, "dead", 500, "HTTP 500: boom"))
        time.sleep(1)
        self.assertEqual(len(self.hook.matching("custom failure text")), 1, "not retried")
        # Stored as notifications of source test, listed with their delivery.
        status, _, listed = self.svc.get("/v1/notifications?limit=1000")
        tests = {n["id"]: n for n in listed["notifications"] if n["source"] == "test"}
        self.assertEqual(tests[body["notification_id"]]["deliveries"][0]["status"], "dead")
        self.assertEqual(tests[body["notification_id"]]["deliveries"][0]["last_error"], "HTTP 500: boom")
        # Errors.
        status, _, body = self.svc.post_json("/v1/notifications/test", {"route": "nope"})
        self.assertEqual((status, body["code"]), (404, "unknown_route"))
        self.assertIn("tg, slack, mail, mail-starttls", body["message"])
        for bad in ({}, {"route": "tg", "colour": "red"}, {"route": 5}, {"route": "tg", "text": ""},
                    {"route": "tg", "text": "x" * 2001}):
            status, _, body = self.svc.post_json("/v1/notifications/test", bad)
            self.assertEqual((status, body["code"]), (400, "invalid_body"), bad)
        status, _, body = self.svc.request("POST", "/v1/notifications/test", "not json",
                                           headers={"Content-Type": "application/json"})
        self.assertEqual((status, body["code"]), (400, "invalid_json"))
        self.assertEqual(self.svc.post_json("/v1/notifications/test", {"route": "tg"}, token=None)[0], 401)
        self.assertEqual(self.svc.post_json("/v1/notifications/test", {"route": "tg"}, token=READ_TOKEN)[0], 401)

    def test_openapi_documents_the_test_endpoint(self):
        status, _, doc = self.svc.get("/openapi.json")
        op = doc["paths"]["/v1/notifications/test"]["post"]
        self.assertEqual(set(op["responses"]), {"200", "400", "401", "404", "503"})
        self.assertIn("TestResult", doc["components"]["schemas"])


@require_service
class RouteValidation(unittest.TestCase):
    def check_config(self, routes):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEWATCH_")}
        env.update({"TIDEWATCH_DATABASE_URL": service_dsn(), "TIDEWATCH_WRITE_TOKENS": WRITE_TOKEN,
                    "TIDEWATCH_ALERT_ROUTES": json.dumps(routes)})
        return subprocess.run([BIN, "check-config", "--offline"], env=env, capture_output=True, text=True, timeout=30)

    def test_the_examples_of_docs_alerts_md_are_valid(self):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "alerts.md")) as f:
            doc = f.read()
        routes = []
        for block in re.findall(r"```toml\n(.*?)```", doc, re.S):
            routes += tomllib.loads(block)["alert_routes"]
        self.assertEqual({r["kind"] for r in routes}, {"webhook", "telegram", "slack", "email"})
        for n, r in enumerate(routes):
            r["name"] = f"r{n}"
        p = self.check_config(routes)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"r{len(routes) - 1} (", p.stdout)

    def test_each_kind_is_checked_at_start_and_secrets_not_shown(self):
        good = [{"name": "tg", "kind": "telegram", "bot_token": BOT_TOKEN, "chat_id": "@ops"},
                {"name": "sl", "kind": "slack", "url": "https://hooks.example.net" + SLACK_PATH},
                {"name": "em", "kind": "email", "smtp_host": "smtp.example.net", "smtp_tls": "tls",
                 "smtp_username": SMTP_USER, "smtp_password": SMTP_PASSWORD, "from": "tw@example.net", "to": ["a@example.net"]}]
        p = self.check_config(good)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("tg (telegram), sl (slack), em (email)", p.stdout)
        self.assertNotIn("SECRET", p.stdout + p.stderr)
        for route, message in [
            ({"name": "x", "kind": "sms", "url": "http://a"}, 'unknown kind "sms" (supported: webhook, telegram, slack, email)'),
            ({"name": "x", "kind": "telegram", "bot_token": BOT_TOKEN}, "telegram routes need chat_id"),
            ({"name": "x", "kind": "telegram", "chat_id": 1}, "telegram routes need bot_token"),
            ({"name": "x", "kind": "telegram", "bot_token": BOT_TOKEN, "chat_id": 1, "base_url": "not a url"},
             "base_url must start with http:// or https://"),
            ({"name": "x", "kind": "slack", "url": "https://"}, "url is not a valid URL"),
            ({"name": "x", "kind": "slack"}, "slack routes need url"),
            ({"name": "x", "kind": "email", "smtp_host": "h", "from": "tw@example.net"}, "email routes need to"),
            ({"name": "x", "kind": "email", "smtp_host": "h", "from": "tw@example.net", "to": ["a@b.c"], "smtp_tls": "ssl"},
             'smtp_tls "ssl" is not one of none, starttls, tls'),
            ({"name": "x", "kind": "email", "smtp_host": "h", "from": "not-an-address", "to": ["a@b.c"]},
             "from is not an e-mail address"),
            ({"name": "x", "kind": "slack", "url": "https://a.example", "bot_token": BOT_TOKEN},
             "bot_token is not a setting of slack routes"),
        ]:
            with self.subTest(route=route):
                p = self.check_config([route])
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertIn(message, p.stderr)
                self.assertNotIn("SECRET", p.stdout + p.stderr)
        # A service does not start with a bad route either.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEWATCH_")}
        env.update({"TIDEWATCH_DATABASE_URL": service_dsn(), "TIDEWATCH_WRITE_TOKENS": WRITE_TOKEN,
                    "TIDEWATCH_LISTEN": "127.0.0.1:0",
                    "TIDEWATCH_ALERT_ROUTES": json.dumps([{"name": "x", "kind": "telegram", "bot_token": BOT_TOKEN}])})
        p = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("telegram routes need chat_id", p.stderr)
        self.assertNotIn("listening on", p.stderr)


if __name__ == "__main__":
    unittest.main()
