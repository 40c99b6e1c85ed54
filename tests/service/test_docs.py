"""docs/service.md's curl examples run as tests: every ```sh block followed by a ```response block
runs (in order, with bash) against a fresh service, with TW (its URL), TOKEN (a write token) and
READ_TOKEN set, and its output is compared with the response block, with the doc-test runner's
rules (`...` lines and `[...]` inside a line match anything). Other ```sh blocks are set-up for
readers and are not run.

TIDEWATCH_DOCS_UPDATE=1 rewrites the response blocks with what the commands printed.
"""
import os
import subprocess
import sys
import unittest

from svctest import DB, DSN, READ_TOKEN, REPO, WRITE_TOKEN, Service, fresh_database, require_service, service_dsn

sys.path.insert(0, os.path.join(REPO, "tools", "doctest"))
import run as doctest  # noqa: E402  (the doc-test runner: fences and comparison, one implementation)

DOC = os.path.join(REPO, "docs", "service.md")


def examples(text):
    lines, _ = doctest.split_lines(text)
    fences = doctest.parse_fences(lines)
    out = []
    for k, f in enumerate(fences[:-1]):
        nxt = fences[k + 1]
        between = lines[f.close_idx + 1:nxt.open_idx]
        if f.lang == "sh" and nxt.lang == "response" and all(not x.strip() for x in between):
            out.append((f, nxt))
    return lines, out


@require_service
class Docs(unittest.TestCase):
    def test_curl_examples(self):
        fresh_database()
        # A sync monitor: episodes are visible when the write is acknowledged, so the examples'
        # output does not depend on the decoder's timing.
        svc = Service(read_tokens=READ_TOKEN, monitor="sync")
        try:
            with open(DOC) as f:
                text = f.read()
            lines, blocks = examples(text)
            self.assertGreaterEqual(len(blocks), 20, "docs/service.md should show every endpoint")
            env = {**os.environ, "TW": svc.url, "TOKEN": WRITE_TOKEN, "READ_TOKEN": READ_TOKEN,
                   "TIDEWATCH_DATABASE_URL": service_dsn(), "ADMIN_DATABASE_URL": f"{DSN} dbname={DB}", "PGTZ": "UTC"}
            updates = []
            for sh, response in blocks:
                with self.subTest(line=sh.line):
                    proc = subprocess.run(["bash", "-c", "set -o pipefail\n" + "\n".join(sh.content)], env=env,
                                          capture_output=True, text=True, timeout=120, cwd=REPO)
                    actual = doctest.normalize((proc.stdout + proc.stderr).splitlines())
                    expected = doctest.normalize(response.content)
                    updates.append((response, actual))
                    if os.environ.get("TIDEWATCH_DOCS_UPDATE"):
                        continue
                    self.assertEqual(proc.returncode, 0, f"docs/service.md:{sh.line} failed:\n{proc.stderr}")
                    self.assertTrue(doctest.match_lines(expected, actual),
                                    f"docs/service.md:{sh.line}\n" + "\n".join(doctest.unified_diff(expected, actual)))
            if os.environ.get("TIDEWATCH_DOCS_UPDATE"):
                for response, actual in reversed(updates):
                    lines[response.open_idx + 1:response.close_idx] = [response.indent + x for x in actual]
                with open(DOC, "w") as f:
                    f.write("\n".join(lines))
        finally:
            svc.stop()


if __name__ == "__main__":
    unittest.main()
