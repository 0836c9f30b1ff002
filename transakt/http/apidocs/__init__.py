"""The API docs page at ``/api/docs``: the OpenAPI document rendered for people, by the node.

Rendered once per process from the document the node serves at ``/api/v1/openapi.json``
(:mod:`.render`), with one style sheet beside it: no script, nothing loaded from elsewhere, so
it works under the strict Content-Security-Policy every answer carries.
"""
