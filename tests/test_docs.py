"""The README documents every setting and keeps the two quickstart commands that CI runs."""

from __future__ import annotations

from pathlib import Path

from service.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`NEWSLOOM_{name.upper()}`" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make run " in readme and "make test " in readme
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")


def test_api_reference_is_generated_from_the_openapi_document():
    """docs/api.md is what `newsloom openapi --markdown docs/api.md` writes for this code."""
    from service.api.app import create_app
    from service.api.reference import markdown

    expected = markdown(create_app(Settings(database_url="sqlite+aiosqlite:///unused.db")).openapi())
    actual = (ROOT / "docs" / "api.md").read_text()
    assert actual == expected, "docs/api.md is out of date: run `newsloom openapi --markdown docs/api.md`"


def _snippet(language: str, marker: str) -> str:
    import re

    text = (ROOT / "docs" / "webhooks.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.S)
    return next(block for block in blocks if marker in block)


def _signed() -> tuple[str, dict[str, str], bytes]:
    import time

    from service.webhooks import signing

    secret = signing.generate_secret()
    body = b'{"type": "ping", "timestamp": "2026-01-01T00:00:00Z", "data": {"message": "h\\u00e9"}}'
    headers = signing.headers([signing.generate_secret(), secret], "msg_test1", int(time.time()), body)
    return secret, {k.lower(): v for k, v in headers.items()}, body


def test_python_verification_snippet_accepts_our_signatures_only():
    import pytest

    namespace: dict = {}
    exec(_snippet("python", "def verify"), namespace)  # the documented code, run as is
    secret, headers, body = _signed()
    namespace["verify"](secret, headers, body)  # the second of two signatures (a rotation) matches
    with pytest.raises(ValueError):
        namespace["verify"](secret, headers, body + b" ")


def test_node_verification_snippet_accepts_our_signatures_only(tmp_path):
    import json
    import shutil
    import subprocess

    import pytest

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    secret, headers, body = _signed()
    script = tmp_path / "verify.js"
    script.write_text(_snippet("js", "function verify") + f"""
const secret = {json.dumps(secret)}, headers = {json.dumps(headers)};
const body = Buffer.from({json.dumps(body.decode())});
verify(secret, headers, body);
let refused = false;
try {{ verify(secret, headers, Buffer.concat([body, Buffer.from(" ")])); }} catch (e) {{ refused = true; }}
if (!refused) throw new Error("tampered body accepted");
console.log("ok");
""")
    done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
