"""weaviate.v1.Weaviate/Aggregate over a whole collection (optionally filtered): the object
count and per-property metrics for text, int, number, boolean and date properties."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

from . import schema as sch
from .errors import Unprocessable
from .filters import from_proto, select
from .store import Store
from .stubs import aggregate_pb2

Reply = aggregate_pb2.AggregateReply
Agg = Reply.Aggregations.Aggregation


def _values(objs: list[Any], name: str) -> list[Any]:
    out: list[Any] = []
    for obj in objs:
        value = obj.properties.get(name)
        if isinstance(value, list):
            out.extend(value)
        elif value is not None:
            out.append(value)
    return out


def _mode(values: list[Any]) -> Any:
    counts = Counter(values)
    best = max(counts.values())
    return min(v for v, c in counts.items() if c == best)


def _numeric(kind: str, wanted: Any, values: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"count": len(values)} if wanted.count else {}
    if wanted.type:
        out["type"] = kind
    if values:
        for flag, compute in (("sum", sum), ("mean", statistics.fmean),
                              ("median", statistics.median), ("mode", _mode),
                              ("maximum", max), ("minimum", min)):
            if getattr(wanted, flag):
                out[flag] = compute(values)
    return out


def _aggregation(kind: str, name: str, wanted: Any, values: list[Any]) -> Any:
    which = wanted.WhichOneof("aggregation")
    if which == "text":
        t = wanted.text
        limit = t.top_occurences_limit if t.HasField("top_occurences_limit") else 5
        top = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        items = [Agg.Text.TopOccurrences.TopOccurrence(value=v, occurs=c) for v, c in top]
        return Agg(property=name, text=Agg.Text(
            count=len(values) if t.count else None, type=kind if t.type else None,
            top_occurences=Agg.Text.TopOccurrences(items=items) if t.top_occurences else None))
    if which in ("int", "number"):
        fields = _numeric(kind, getattr(wanted, which), values)
        if which == "int":
            for key in ("median", "mean"):
                if key in fields:
                    fields[key] = float(fields[key])
            return Agg(property=name, int=Agg.Integer(**fields))
        return Agg(property=name, number=Agg.Number(**fields))
    if which == "boolean":
        b = wanted.boolean
        true = sum(1 for v in values if v)
        total = len(values) or 1
        return Agg(property=name, boolean=Agg.Boolean(
            count=len(values) if b.count else None, type=kind if b.type else None,
            total_true=true if b.total_true else None,
            total_false=len(values) - true if b.total_false else None,
            percentage_true=true / total if b.percentage_true else None,
            percentage_false=(len(values) - true) / total if b.percentage_false else None))
    if which == "date":
        d = wanted.date
        ordered = sorted(values)
        return Agg(property=name, date=Agg.Date(
            count=len(values) if d.count else None, type=kind if d.type else None,
            maximum=ordered[-1] if d.maximum and ordered else None,
            minimum=ordered[0] if d.minimum and ordered else None,
            median=ordered[len(ordered) // 2] if d.median and ordered else None,
            mode=_mode(values) if d.mode and ordered else None))
    raise Unprocessable(f"aggregation {which} is not supported by the stand-in")


def run(store: Store, req: Any) -> Any:
    started = time.time()
    coll = store.find(req.collection)
    if coll is None:
        raise Unprocessable(f"could not find class {req.collection} in schema")
    for name in ("group_by", "hybrid", "near_vector", "near_object", "near_text"):
        if req.HasField(name):
            raise Unprocessable(f"aggregate with {name} is not supported by the stand-in")
    with store.lock:
        clause = from_proto(coll, req.filters) if req.HasField("filters") else None
        objs = select(coll, clause)
        aggregations = []
        for wanted in req.aggregations:
            definition = sch.property_of(coll.schema, wanted.property)
            if definition is None:
                raise Unprocessable(f"could not find property {wanted.property} in class "
                                    f"{coll.name}")
            aggregations.append(_aggregation(definition["dataType"][0], wanted.property, wanted,
                                             _values(objs, wanted.property)))
    single = Reply.Single(objects_count=len(objs) if req.objects_count else None,
                          aggregations=Reply.Aggregations(aggregations=aggregations))
    return Reply(took=time.time() - started, single_result=single)
