"""The Markdown API reference (``docs/api.md``), generated from the app's OpenAPI document by
``newsloom openapi --markdown docs/api.md``; ``tests/test_docs.py`` checks it is up to date."""

from __future__ import annotations

from typing import Any

HEADER = """# Newsloom API reference

Generated from the OpenAPI document by `newsloom openapi --markdown docs/api.md`; do not edit by
hand (the test suite checks it matches the code). The live document is at `/openapi.json`, the
interactive one at `/docs`.

Authentication: `Authorization: Bearer <key>` (RFC 6750) on `/v1/…` (`read` scope for GET, `admin`
for every other method) and on `/metrics` (`read`); `/healthz`, `/readyz` and the OpenAPI document
are open. Keys come from `newsloom keys create --scope read|admin`. A `read` key sees the password
in a feed or webhook URL (`https://user:password@…`) as `***`; an `admin` key sees it whole.
Credentials in a feed URL are how a private feed is fetched (HTTP Basic), not which feed it is: a
URL that differs from a subscribed feed's only by them is that feed (`409`). Entry links never
carry them (a private feed's relative links lose them), so article URLs and webhook events do
not show them; log lines name feeds by id and show a password quoted in an error as `***`. Errors
are RFC 9457 problem details (`application/problem+json`, schema `Problem` below).
"""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    """A short type label for a JSON Schema: ``integer``, ``string (date-time)``, ``[FeedPublic]``, ``A | null``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return f"[{_ref_name(schema['$ref'])}](#{_ref_name(schema['$ref']).lower()})"
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            return " \\| ".join(_type(s) for s in schema[combo])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _limits(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "min length"), ("maxLength", "max length"),
                       ("minItems", "min items"), ("maxItems", "max items"), ("pattern", "pattern")):
        for candidate in [schema, *schema.get("anyOf", [])]:
            if key in candidate:
                value = f"`{candidate[key]}`" if key == "pattern" else candidate[key]
                parts.append(f"{label} {value}")
    if "default" in schema and schema["default"] is not None:
        parts.append(f"default `{schema['default']}`")
    return ", ".join(parts)


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def markdown(spec: dict[str, Any]) -> str:
    """The reference for the OpenAPI 3.x document ``spec``: one section per operation
    (parameters, body, responses), then every schema with its properties. Deterministic: the
    same document always gives the same text."""
    out = [HEADER]
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            out.append(f"## `{method.upper()} {path}`\n")
            if op.get("summary"):
                out.append(f"**{op['summary']}**\n")
            if op.get("description"):
                out.append(op["description"].strip() + "\n")
            params = op.get("parameters", [])
            if params:
                out.append("| parameter | in | type | required | limits | description |\n|---|---|---|---|---|---|")
                for p in params:
                    schema = p.get("schema", {})
                    out.append(f"| `{p['name']}` | {p['in']} | {_type(schema)} | {'yes' if p.get('required') else 'no'} | "
                               f"{_cell(_limits(schema))} | {_cell(p.get('description') or schema.get('description'))} |")
                out.append("")
            body = op.get("requestBody")
            if body:
                kinds = ", ".join(f"`{media}` {_type(content.get('schema', {}))}" for media, content in body["content"].items())
                out.append(f"Body: {kinds}\n")
            out.append("| status | description | body |\n|---|---|---|")
            for code, response in sorted(op.get("responses", {}).items()):
                content = response.get("content", {})
                kinds = ", ".join(f"`{media}` {_type(c.get('schema', {}))}" for media, c in content.items())
                out.append(f"| {code} | {_cell(response.get('description'))} | {kinds} |")
            out.append("")
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        out.append("# Schemas\n")
    for name in sorted(schemas):
        schema = schemas[name]
        out.append(f"## {name}\n")
        if schema.get("description"):
            out.append(_cell(schema["description"]) + "\n")
        properties = schema.get("properties", {})
        if properties:
            required = set(schema.get("required", []))
            out.append("| field | type | required | limits | description |\n|---|---|---|---|---|")
            for field, prop in properties.items():
                out.append(f"| `{field}` | {_type(prop)} | {'yes' if field in required else 'no'} | "
                           f"{_cell(_limits(prop))} | {_cell(prop.get('description'))} |")
            out.append("")
        elif "enum" in schema:
            out.append(f"One of {_type(schema)}.\n")
    webhooks = spec.get("webhooks", {})
    if webhooks:
        out.append("# Webhook events\n\nSent as signed POSTs to subscriptions (see `docs/webhooks.md`).\n")
        for name, item in webhooks.items():
            for _method, op in item.items():
                content = op.get("requestBody", {}).get("content", {})
                kinds = ", ".join(_type(c.get("schema", {})) for c in content.values())
                out.append(f"- `{name}`: {kinds}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
