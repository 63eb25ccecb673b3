"""weaviate.v1.Weaviate/Aggregate over a whole collection (optionally filtered): the object
count and per-property metrics for text, int, number, boolean and date properties."""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections import Counter
from typing import Any

from . import query
from . import schema as sch
from .errors import Unprocessable
from .filters import from_proto, select
from .store import Store
from .stubs import aggregate_pb2
from .values import format_date, parse_date

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
    """Only what was asked for, plus the type (prepare_aggregate_reply.go)."""
    out: dict[str, Any] = {"type": kind}
    if wanted.count:
        out["count"] = len(values)
    if values:
        for flag, compute in (("sum", sum), ("mean", statistics.fmean),
                              ("median", statistics.median), ("mode", _mode),
                              ("maximum", max), ("minimum", min)):
            if getattr(wanted, flag):
                out[flag] = compute(values)
    return out


def _aggregation(kind: str, name: str, wanted: Any, values: list[Any]) -> Any:
    which = wanted.WhichOneof("aggregation")
    if which == "text":  # count, type and the top occurrences always come back
        t = wanted.text
        limit = t.top_occurences_limit if t.HasField("top_occurences_limit") else 5
        top = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        items = [Agg.Text.TopOccurrences.TopOccurrence(value=v, occurs=c) for v, c in top]
        return Agg(property=name, text=Agg.Text(
            count=len(values), type=kind,
            top_occurences=Agg.Text.TopOccurrences(items=items) if items else None))
    if which in ("int", "number"):
        fields = _numeric(kind, getattr(wanted, which), values)
        if which == "int":
            for key in ("median", "mean"):
                if key in fields:
                    fields[key] = float(fields[key])
            return Agg(property=name, int=Agg.Integer(**fields))
        return Agg(property=name, number=Agg.Number(**fields))
    if which == "boolean":  # everything, whatever was asked ("TODO: check if requested")
        true = sum(1 for v in values if v)
        total = len(values)
        return Agg(property=name, boolean=Agg.Boolean(
            count=total, type=kind, total_true=true, total_false=total - true,
            percentage_true=true / total if total else 0.0,
            percentage_false=(total - true) / total if total else 0.0))
    if which == "date":
        d = wanted.date
        ordered = sorted(values)
        fields: dict[str, Any] = {"type": kind}
        if d.count:
            fields["count"] = len(values)
        if ordered:
            stamps = sorted(parse_date(v).timestamp() for v in values)
            middle = statistics.median(stamps)  # the mean of the middle two, as Weaviate
            median = format_date(dt.datetime.fromtimestamp(middle, dt.UTC))
            for flag, pick in (("maximum", ordered[-1]), ("minimum", ordered[0]),
                               ("median", median), ("mode", None)):
                if getattr(d, flag):
                    fields[flag] = pick if flag != "mode" else _mode(values)
        return Agg(property=name, date=Agg.Date(**fields))
    raise Unprocessable(f"aggregation {which} is not supported by the stand-in")


def _objects(coll: Any, req: Any, clause: Any) -> list[Any]:
    """The objects aggregated: all (filtered), or the hits of a search up to object_limit."""
    candidates = select(coll, clause)
    limit = req.object_limit if req.HasField("object_limit") else None
    if req.HasField("hybrid"):
        hits = query.hybrid_hits(coll, req.hybrid, candidates, limit or query.HYBRID_MAX_RESULTS)
    elif req.HasField("near_vector"):
        hits = query.near_vector_hits(coll, req.near_vector, candidates)
    elif req.HasField("near_object"):
        hits = query.near_object_hits(coll, req.near_object, candidates)
    else:
        return candidates
    return [h.obj for h in hits[:limit]]


def run(store: Store, req: Any) -> Any:
    started = time.time()
    coll = store.find(req.collection)
    if coll is None:
        raise Unprocessable(f"could not find class {req.collection} in schema")
    for name in ("group_by", "near_text", "near_image"):
        if req.HasField(name):
            raise Unprocessable(f"aggregate with {name} is not supported by the stand-in")
    with store.lock:
        clause = from_proto(coll, req.filters, store) if req.HasField("filters") else None
        objs = _objects(coll, req, clause)
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
