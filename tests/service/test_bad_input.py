"""Bad input: a 4xx with a JSON {code, message}, and nothing written. Every case asserts the
status, the error code and that neither table changed (count and a digest of every row)."""
import gzip
import json
import unittest

from svctest import (READ_TOKEN, WRITE_TOKEN, Service, fresh_database, psql, remote_write_body, require_service,
                     snappy_literal, table_state)

LIMIT = 1 << 20  # the instance under test takes bodies up to 1 MiB

GOOD = {"metric": "m", "labels": {"a": "1"}, "ts": "2026-03-02T10:00:05Z", "value": 1.5}


def point(**kw):
    p = dict(GOOD)
    p.update(kw)
    return p


def jsonb(obj):
    return json.dumps(obj).encode()


J = {"Content-Type": "application/json"}
T = {"Content-Type": "text/plain"}
RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
ND = {"Content-Type": "application/x-ndjson"}

# (name, method, path, body, headers, token, status, code)
CASES = [
    ("malformed JSON", "POST", "/v1/metrics", b'[{"metric": "m", "value": ', J, WRITE_TOKEN, 400, "invalid_json"),
    ("value is a string", "POST", "/v1/metrics", jsonb([point(value="1.5")]), J, WRITE_TOKEN, 400, "invalid_value"),
    ("value is a boolean", "POST", "/v1/metrics", jsonb([point(value=True)]), J, WRITE_TOKEN, 400, "invalid_value"),
    ("value is null", "POST", "/v1/metrics", jsonb([point(value=None)]), J, WRITE_TOKEN, 400, "invalid_value"),
    ("value missing", "POST", "/v1/metrics", b'[{"metric": "m"}]', J, WRITE_TOKEN, 400, "missing_field"),
    ("NaN literal", "POST", "/v1/metrics", b'[{"metric": "m", "value": NaN}]', J, WRITE_TOKEN, 400, "invalid_json"),
    ("Infinity literal", "POST", "/v1/metrics", b'[{"metric": "m", "value": -Infinity}]', J, WRITE_TOKEN, 400, "invalid_json"),
    ("1e999", "POST", "/v1/metrics", b'[{"metric": "m", "value": 1e999}]', J, WRITE_TOKEN, 400, "invalid_value"),
    ("timestamp year 10000", "POST", "/v1/metrics", jsonb([point(ts="10000-01-01T00:00:00Z")]), J, WRITE_TOKEN, 400, "invalid_timestamp"),
    ("timestamp unparsable", "POST", "/v1/metrics", jsonb([point(ts="yesterday at noon")]), J, WRITE_TOKEN, 400, "invalid_timestamp"),
    ("epoch out of range", "POST", "/v1/metrics", jsonb([point(ts=10**15)]), J, WRITE_TOKEN, 400, "invalid_timestamp"),
    ("timestamp is a boolean", "POST", "/v1/metrics", jsonb([point(ts=True)]), J, WRITE_TOKEN, 400, "invalid_timestamp"),
    ("empty metric name", "POST", "/v1/metrics", jsonb([point(metric="")]), J, WRITE_TOKEN, 400, "invalid_metric"),
    ("NUL in metric name", "POST", "/v1/metrics", jsonb([point(metric="a\u0000b")]), J, WRITE_TOKEN, 400, "invalid_metric"),
    ("nested labels", "POST", "/v1/metrics", jsonb([point(labels={"a": {"b": "c"}})]), J, WRITE_TOKEN, 400, "invalid_labels"),
    ("number label value", "POST", "/v1/metrics", jsonb([point(labels={"a": 1})]), J, WRITE_TOKEN, 400, "invalid_labels"),
    ("labels as a list", "POST", "/v1/metrics", jsonb([point(labels=["a", "b"])]), J, WRITE_TOKEN, 400, "invalid_labels"),
    ("label value over 4 KiB", "POST", "/v1/metrics", jsonb([point(labels={"a": "x" * 4097})]), J, WRITE_TOKEN, 400, "invalid_labels"),
    ("65 labels", "POST", "/v1/metrics", jsonb([point(labels={f"k{i}": "v" for i in range(65)})]), J, WRITE_TOKEN, 400, "invalid_labels"),
    ("NUL in a label value", "POST", "/v1/metrics", jsonb([point(labels={"a": "x\u0000"})]), J, WRITE_TOKEN, 400, "invalid_labels"),
    ("unknown field", "POST", "/v1/metrics", jsonb([point(valeu=3)]), J, WRITE_TOKEN, 400, "unknown_field"),
    ("invalid UTF-8", "POST", "/v1/metrics", b'[{"metric": "m\xff", "value": 1}]', J, WRITE_TOKEN, 400, "invalid_utf8"),
    ("one bad point among 1000 good", "POST", "/v1/metrics",
     jsonb([point(ts=1772445600 + i) for i in range(1000)] + [point(value="x")]), J, WRITE_TOKEN, 400, "invalid_value"),
    ("unknown query parameter", "POST", "/v1/metrics?precison=ms", jsonb([GOOD]), J, WRITE_TOKEN, 400, "unknown_parameter"),
    ("unknown precision", "POST", "/v1/metrics?precision=minutes", jsonb([GOOD]), J, WRITE_TOKEN, 400, "invalid_parameter"),
    ("no token", "POST", "/v1/metrics", jsonb([GOOD]), J, None, 401, "unauthorized"),
    ("wrong token", "POST", "/v1/metrics", jsonb([GOOD]), J, "not-the-token", 401, "invalid_token"),
    ("read token on a write endpoint", "POST", "/v1/metrics", jsonb([GOOD]), J, READ_TOKEN, 401, "invalid_token"),
    ("Basic auth", "POST", "/v1/metrics", jsonb([GOOD]), {**J, "Authorization": "Basic dTpw"}, None, 401, "unauthorized"),
    ("body over the limit", "POST", "/v1/metrics", jsonb([point(ts=1772445600 + i) for i in range(20000)]), J, WRITE_TOKEN,
     413, "body_too_large"),
    ("gzip bomb", "POST", "/v1/metrics", gzip.compress(b"[" + b" " * (64 << 20) + b"]"), {**J, "Content-Encoding": "gzip"},
     WRITE_TOKEN, 413, "body_too_large"),
    ("corrupt gzip", "POST", "/v1/metrics", gzip.compress(jsonb([GOOD]))[:-12] + b"garbage!", {**J, "Content-Encoding": "gzip"},
     WRITE_TOKEN, 400, "invalid_encoding"),
    ("brotli", "POST", "/v1/metrics", jsonb([GOOD]), {**J, "Content-Encoding": "br"}, WRITE_TOKEN, 415, "unsupported_encoding"),
    ("XML", "POST", "/v1/metrics", b"<point/>", {"Content-Type": "application/xml"}, WRITE_TOKEN, 415, "unsupported_media_type"),
    ("no content type", "POST", "/v1/metrics", jsonb([GOOD]), {}, WRITE_TOKEN, 415, "unsupported_media_type"),
    ("GET on a write endpoint", "GET", "/v1/metrics", None, {}, WRITE_TOKEN, 405, "method_not_allowed"),
    # Line protocol.
    ("line without fields", "POST", "/v1/metrics", b"cpu,host=a\n", T, WRITE_TOKEN, 400, "invalid_line_protocol"),
    ("line protocol NaN", "POST", "/v1/metrics", b"cpu value=NaN 1\n", T, WRITE_TOKEN, 400, "invalid_line_protocol"),
    ("line protocol bad timestamp", "POST", "/v1/metrics", b"cpu value=1 noon\n", T, WRITE_TOKEN, 400, "invalid_line_protocol"),
    ("one bad line among good", "POST", "/api/v2/write",
     ("".join(f"cpu,host=a value={i} {1772445600 + i}000000000\n" for i in range(500)) + "cpu,host=a value=\n").encode(),
     {}, WRITE_TOKEN, 400, "invalid_line_protocol"),
    ("line protocol timestamp out of range", "POST", "/api/v2/write?precision=s", b"cpu value=1 99999999999999\n", {},
     WRITE_TOKEN, 400, "invalid_line_protocol"),
    ("InfluxDB write, unknown parameter", "POST", "/api/v2/write?bucket=b&retention=1d", b"cpu value=1\n", {},
     WRITE_TOKEN, 400, "unknown_parameter"),
    ("InfluxDB write, gzip bomb", "POST", "/api/v2/write", gzip.compress(b"#" * (40 << 20)), {"Content-Encoding": "gzip"},
     f"Token {WRITE_TOKEN}", 413, "body_too_large"),
    ("InfluxDB write, wrong Token", "POST", "/api/v2/write", b"cpu value=1\n", {"Authorization": "Token nope"}, None,
     401, "invalid_token"),
    # Remote write.
    ("remote write, not snappy", "POST", "/api/v1/write", b"\xff\xff\xff\xff\xff\xff", RW, WRITE_TOKEN, 400, "invalid_remote_write"),
    ("remote write, not protobuf", "POST", "/api/v1/write", snappy_literal(b"\xff" * 40), RW, WRITE_TOKEN, 400, "invalid_remote_write"),
    ("remote write, NaN sample", "POST", "/api/v1/write",
     remote_write_body([({"__name__": "up"}, [(1.0, 1772445600000), (float("nan"), 1772445615000)])]), RW, WRITE_TOKEN,
     400, "invalid_value"),
    ("remote write, +Inf sample", "POST", "/api/v1/write",
     remote_write_body([({"__name__": "up"}, [(float("inf"), 1772445600000)])]), RW, WRITE_TOKEN, 400, "invalid_value"),
    ("remote write, no __name__", "POST", "/api/v1/write",
     remote_write_body([({"job": "x"}, [(1.0, 1772445600000)])]), RW, WRITE_TOKEN, 400, "invalid_metric"),
    ("remote write, decompresses past the limit", "POST", "/api/v1/write",
     # A snappy header that declares 128 MiB: refused before decompressing anything.
     bytes([0x80, 0x80, 0x80, 0x40]) + b"\x00" * 16, RW, WRITE_TOKEN,
     413, "body_too_large"),
    ("remote write, gzip", "POST", "/api/v1/write", gzip.compress(b"x"), {**RW, "Content-Encoding": "gzip"}, WRITE_TOKEN,
     415, "unsupported_encoding"),
    # Logs.
    ("log line with an empty message", "POST", "/v1/logs", b'{"message": ""}\n', ND, WRITE_TOKEN, 400, "invalid_value"),
    ("log line with a number message", "POST", "/v1/logs", b'{"message": "ok"}\n{"message": 3}\n', ND, WRITE_TOKEN,
     400, "invalid_type"),
    ("log line not JSON", "POST", "/v1/logs", b'{"message": "ok"}\nnot json\n', ND, WRITE_TOKEN, 400, "invalid_json"),
    ("log labels parameter not an object", "POST", "/v1/logs?labels=%5B1%5D", b"hello\n", T, WRITE_TOKEN, 400, "invalid_parameter"),
    ("log text not UTF-8", "POST", "/v1/logs", b"caf\xe9\n", T, WRITE_TOKEN, 400, "invalid_utf8"),
    ("log content type", "POST", "/v1/logs", b"hello", {"Content-Type": "application/octet-stream"}, WRITE_TOKEN,
     415, "unsupported_media_type"),
    ("log line with a NUL", "POST", "/v1/logs", b'{"message": "a\\u0000b"}\n', ND, WRITE_TOKEN, 400, "invalid_value"),
    # Reads.
    ("read without a token", "GET", "/v1/series", None, {}, None, 401, "unauthorized"),
    ("read, unknown parameter", "GET", "/v1/anomalies?severity=critical&sort=asc", None, {}, READ_TOKEN, 400, "unknown_parameter"),
    ("read, unknown severity", "GET", "/v1/anomalies?severity=fatal", None, {}, READ_TOKEN, 400, "invalid_parameter"),
    ("read, forged cursor", "GET", "/v1/anomalies?cursor=Zm9vYmFy", None, {}, READ_TOKEN, 400, "invalid_parameter"),
    ("read, bad time", "GET", "/v1/series?from=last%20week", None, {}, READ_TOKEN, 400, "invalid_parameter"),
    ("read, anomaly id not a number", "GET", "/v1/anomalies/abc", None, {}, READ_TOKEN, 400, "invalid_parameter"),
    ("read, no such anomaly", "GET", "/v1/anomalies/987654321", None, {}, READ_TOKEN, 404, "not_found"),
    ("read, points without metric", "GET", "/v1/series/points", None, {}, READ_TOKEN, 400, "invalid_parameter"),
    ("unknown route", "GET", "/v2/everything", None, {}, READ_TOKEN, 404, "not_found"),
]


@require_service
class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fresh_database()
        cls.svc = Service(read_tokens=READ_TOKEN, max_body_bytes=LIMIT)
        # Something in both tables, so that "unchanged" is about real rows.
        status, _, _ = cls.svc.post_json("/v1/metrics", [point(ts=1772440000 + i, value=i) for i in range(10)])
        assert status == 200
        status, _, _ = cls.svc.post_text("/v1/logs", "seed line\n")
        assert status == 200

    @classmethod
    def tearDownClass(cls):
        cls.svc.stop()

    def test_at_least_30_cases(self):
        self.assertGreaterEqual(len(CASES), 30)

    def test_each_case(self):
        for name, method, path, body, headers, token, status, code in CASES:
            with self.subTest(name):
                before = table_state("metrics", "logs")
                h = dict(headers)
                if token is not None and token.startswith("Token "):
                    h["Authorization"] = token
                    token = None
                got_status, got_headers, got = self.svc.request(method, path, body, headers=h, token=token)
                self.assertEqual(got_status, status, got)
                self.assertTrue(got_headers.get("Content-Type", "").startswith("application/json"), got_headers)
                self.assertIsInstance(got, dict, got)
                self.assertEqual(set(got), {"code", "message"}, got)
                self.assertEqual(got["code"], code, got["message"])
                self.assertTrue(got["message"], "the message must say what was wrong")
                if status == 401:
                    self.assertEqual(got_headers.get("WWW-Authenticate"), "Bearer")
                self.assertEqual(table_state("metrics", "logs"), before, "the request wrote something")

    def test_messages_name_the_offending_value(self):
        _, _, got = self.svc.post_json("/v1/metrics", [GOOD, point(value="12.5x")])
        self.assertIn("point 1", got["message"])
        self.assertIn("12.5x", got["message"])
        _, _, got = self.svc.post_text("/v1/metrics", "cpu value=1\ncpu value=1\ncpu value=oops\n")
        self.assertIn("line 3", got["message"])
        self.assertIn("oops", got["message"])
        _, _, got = self.svc.request("POST", "/v1/metrics?precison=ms", jsonb([GOOD]), headers=J)
        self.assertIn("precison", got["message"])
        self.assertIn("precision", got["message"])

    def test_the_token_is_never_logged(self):
        self.svc.post_json("/v1/metrics", [GOOD], token="secret-token-that-must-not-appear")
        self.svc.post_json("/v1/metrics", [GOOD])
        self.assertNotIn("secret-token-that-must-not-appear", self.svc.log)
        self.assertNotIn(WRITE_TOKEN, self.svc.log)
        self.assertNotIn(READ_TOKEN, self.svc.log)

    def test_rejections_are_counted_by_reason(self):
        self.svc.post_json("/v1/metrics", [point(value="x")])
        _, _, text = self.svc.get("/metrics", token=None)
        text = text.decode()
        self.assertRegex(text, r'tidewatch_requests_rejected_total\{reason="invalid_value"\} [1-9]')


if __name__ == "__main__":
    unittest.main()
