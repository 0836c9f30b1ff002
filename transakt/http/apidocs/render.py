"""The API docs page as HTML, rendered on the server from the OpenAPI document.

No script at all: the page works under the strict Content-Security-Policy every answer carries,
loads nothing from elsewhere, and every text of the document is escaped before it is written.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any, Final

__all__ = ["render_page"]

Json = dict[str, Any]

_METHODS: Final = ("get", "post", "put", "patch", "delete")
_STYLESHEET: Final = "/api/docs/apidocs.css"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _anchor(prefix: str, name: str) -> str:
    safe = "".join(character if character.isalnum() else "-" for character in name)
    return f"{prefix}-{safe}"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _resolve(document: Json, item: Json) -> Json:
    """Follow one local ``$ref`` (``#/components/...``) to what it names."""
    ref = item.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return item
    node: Any = document
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _type_of(schema: Any) -> str:
    """A schema in a few words of HTML: a link for a named schema, the type with its limits."""
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        name = _ref_name(str(schema["$ref"]))
        return f'<a href="#{_anchor("schema", name)}">{_e(name)}</a>'
    for combiner in ("oneOf", "anyOf", "allOf"):
        if combiner in schema and "type" not in schema and "properties" not in schema:
            joined = " | " if combiner != "allOf" else " &amp; "
            return joined.join(_type_of(part) for part in schema[combiner])
    kind = schema.get("type", "object" if "properties" in schema else "any")
    text = " | ".join(map(str, kind)) if isinstance(kind, list) else str(kind)
    shown = _e(text)
    if text == "array" and "items" in schema:
        shown = f"array of {_type_of(schema['items'])}"
    details = []
    if "format" in schema:
        details.append(_e(schema["format"]))
    if "enum" in schema:
        values = ", ".join(f"<code>{_e(value)}</code>" for value in schema["enum"])
        details.append(f"one of {values}")
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("pattern", "matches"),
    ):
        if key in schema:
            details.append(f"{label} <code>{_e(schema[key])}</code>")
    return shown + (f" ({'; '.join(details)})" if details else "")


def _properties(schema: Json) -> str:
    """A table of an object schema's properties (empty when it has none)."""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        return ""
    required = set(schema.get("required", ()))
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code>{' <em>required</em>' if name in required else ''}"
        f"</td><td>{_type_of(sub)}</td>"
        f"<td>{_e(sub.get('description', '')) if isinstance(sub, dict) else ''}</td></tr>"
        for name, sub in properties.items()
    )
    return (
        "<table><thead><tr><th>field</th><th>type</th><th>meaning</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _schema_block(document: Json, schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    block = f"<p>{_type_of(schema)}</p>"
    if "$ref" not in schema:
        block += _properties(schema)
    return block


def _content(document: Json, content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "".join(
        f"<p class=media><code>{_e(media)}</code></p>"
        + _schema_block(document, (body or {}).get("schema"))
        for media, body in content.items()
    )


def _parameters(document: Json, parameters: Iterable[Json]) -> str:
    rows = []
    for raw in parameters:
        parameter = _resolve(document, raw)
        required = " <em>required</em>" if parameter.get("required") else ""
        rows.append(
            f"<tr><td><code>{_e(parameter.get('name', ''))}</code>{required}</td>"
            f"<td>{_e(parameter.get('in', ''))}</td><td>{_type_of(parameter.get('schema'))}</td>"
            f"<td>{_e(parameter.get('description', ''))}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<h4>Parameters</h4><table><thead><tr><th>name</th><th>in</th><th>type</th>"
        f"<th>meaning</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _responses(document: Json, responses: Json) -> str:
    items = []
    for status, raw in responses.items():
        response = _resolve(document, raw) if isinstance(raw, dict) else {}
        items.append(
            f"<li><strong>{_e(status)}</strong> {_e(response.get('description', ''))}"
            f"{_content(document, response.get('content'))}</li>"
        )
    return f"<h4>Responses</h4><ul class=responses>{''.join(items)}</ul>"


def _operation(document: Json, method: str, path: str, operation: Json) -> str:
    operation_id = str(operation.get("operationId", f"{method} {path}"))
    public = operation.get("security") == []
    access = "public" if public else "needs a bearer token"
    body = ""
    request_body = operation.get("requestBody")
    if isinstance(request_body, dict):
        body = "<h4>Request body</h4>" + _content(document, request_body.get("content"))
    return (
        f'<section class=operation id="{_anchor("op", operation_id)}">'
        f"<h3><span class='method {_e(method)}'>{_e(method.upper())}</span> "
        f"<code>{_e(path)}</code></h3>"
        f"<p>{_e(operation.get('summary', ''))}</p>"
        f"<p class=meta>operation <code>{_e(operation_id)}</code> · {access}</p>"
        f"{_parameters(document, operation.get('parameters', []))}{body}"
        f"{_responses(document, operation.get('responses', {}))}</section>"
    )


def render_page(document: Json) -> str:
    """The whole page: contents by tag, every operation, then every named schema."""
    info = document.get("info", {})
    by_tag: dict[str, list[tuple[str, str, Json]]] = {}
    for path, operations in document.get("paths", {}).items():
        for method in _METHODS:
            operation = operations.get(method)
            if isinstance(operation, dict):
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(str(tag), []).append((method, path, operation))
    contents = "".join(
        f"<li>{_e(tag)}<ul>"
        + "".join(
            f'<li><a href="#{_anchor("op", str(op.get("operationId", "")))}">'
            f"{_e(method.upper())} {_e(path)}</a></li>"
            for method, path, op in items
        )
        + "</ul></li>"
        for tag, items in by_tag.items()
    )
    sections = "".join(
        f'<h2 id="{_anchor("tag", tag)}">{_e(tag)}</h2>'
        + "".join(_operation(document, method, path, op) for method, path, op in items)
        for tag, items in by_tag.items()
    )
    schemas = document.get("components", {}).get("schemas", {})
    schema_sections = "".join(
        f'<section class=schema id="{_anchor("schema", name)}"><h3>{_e(name)}</h3>'
        f"<p>{_e(schema.get('description', ''))}</p>{_schema_block(document, schema)}</section>"
        for name, schema in schemas.items()
        if isinstance(schema, dict)
    )
    title = _e(info.get("title", "API"))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{title}</title>"
        f'<link rel=stylesheet href="{_STYLESHEET}"></head><body>'
        f"<header><h1>{title} <small>version {_e(info.get('version', ''))}</small></h1>"
        f"<p>{_e(info.get('description', ''))}</p>"
        '<p>The machine-readable document: <a href="/api/v1/openapi.json">'
        "/api/v1/openapi.json</a> (OpenAPI 3.1). Private operations take "
        "<code>Authorization: Bearer &lt;access_token&gt;</code> from "
        "<code>POST /api/v1/auth/login</code>.</p></header>"
        f"<nav><h2>Contents</h2><ul>{contents}</ul>"
        '<p><a href="#schemas">Schemas</a></p></nav>'
        f"<main>{sections}<h2 id=schemas>Schemas</h2>{schema_sections}</main></body></html>"
    )
