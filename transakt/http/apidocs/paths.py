"""Where the docs page lives, and its entries in the OpenAPI document."""

from __future__ import annotations

from typing import Final

__all__ = ["APIDOCS_PATH", "STYLESHEET_PATH", "apidocs_paths"]

APIDOCS_PATH: Final = "/api/docs"
STYLESHEET_PATH: Final = f"{APIDOCS_PATH}/apidocs.css"


def apidocs_paths() -> dict[str, object]:
    """The OpenAPI entries of the page and its style sheet."""
    return {
        APIDOCS_PATH: {
            "get": {
                "operationId": "api_docs",
                "summary": "This document as a page for people (tags, operations, bodies)",
                "tags": ["operations"],
                "security": [],
                "responses": {"200": {"description": "", "content": {"text/html": {}}}},
            }
        },
        STYLESHEET_PATH: {
            "get": {
                "operationId": "api_docs_stylesheet",
                "summary": "The docs page's style sheet",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": {"description": "", "content": {"text/css": {}}},
                    "304": {"description": "the cached copy is current (If-None-Match)"},
                },
            }
        },
    }
