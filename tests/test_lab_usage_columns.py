"""A lab.db made before a gateway usage figure existed: opening it adds the figure's column
(its past minutes count 0) instead of failing the first per-minute upsert that names it."""

from __future__ import annotations

import threading
import time

import sqlite_utils

from llmops.ops.kinds.gateway import usage as gateway_usage
from llmops.rollback.gateways import UsageMinutes


def test_an_older_gateway_usage_table_gains_the_new_figures() -> None:
    db = sqlite_utils.Database(memory=True)
    old_fields, new_field = gateway_usage.MINUTE_FIELDS[:-1], gateway_usage.MINUTE_FIELDS[-1]
    db.table("gateway_usage").create(
        {"ref": str, "model": str, "minute": int, **dict.fromkeys(old_fields, float)},
        pk=("ref", "model", "minute"))
    minute = int(time.time()) // 60 * 60  # a recent one: older minutes are let go
    db.execute("insert into gateway_usage (ref, model, minute, requests) values "
               "('gateway/gw', 'chat', ?, 3)", [minute])

    minutes = UsageMinutes(db, threading.RLock())

    assert set(gateway_usage.MINUTE_FIELDS) <= set(db.table("gateway_usage").columns_dict)
    [row] = db.query("select * from gateway_usage")
    assert row["requests"] == 3 and row[new_field] == 0
    added = {f: 1.0 for f in gateway_usage.MINUTE_FIELDS}
    assert minutes.add("gateway/gw", "/u", 0, 10, {("chat", minute): added})
    [row] = db.query("select * from gateway_usage")
    assert row["requests"] == 4 and row[new_field] == 1
