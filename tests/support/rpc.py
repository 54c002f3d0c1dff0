"""Odoo's JSON-RPC for any base URL (an ERP container, the stack's nginx): authenticate,
call_kw; a session keeps the cookie."""

from __future__ import annotations

import json

import requests


def rpc(http: requests.Session, url: str, params: dict, timeout: float = 60) -> dict:
    """One JSON-RPC call: the whole answer (``result`` or ``error``)."""
    r = http.post(url, json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}, timeout=timeout)
    r.raise_for_status()
    return r.json()


def jsonrpc(http: requests.Session, url: str, params: dict) -> object:
    """One JSON-RPC call that must succeed: its result."""
    body = rpc(http, url, params)
    assert "error" not in body, json.dumps(body["error"])[:2000]
    return body["result"]


def authenticate(http: requests.Session, base: str, db: str, password: str, login: str = "admin") -> dict:
    return rpc(http, f"{base}/web/session/authenticate", {"db": db, "login": login, "password": password})


def login(base: str, db: str, password: str, user: str = "admin") -> requests.Session:
    """A session logged in as ``user`` (asserted: a uid and a session cookie)."""
    http = requests.Session()
    body = authenticate(http, base, db, password, user)
    assert "error" not in body and body["result"]["uid"], body
    assert http.cookies.get("session_id")
    return http


def call_kw(http: requests.Session, base: str, model: str, method: str, *args: object, **kwargs: object):
    return jsonrpc(http, f"{base}/web/dataset/call_kw/{model}/{method}",
                   {"model": model, "method": method, "args": list(args), "kwargs": kwargs})
