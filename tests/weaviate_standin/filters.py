"""Where-filters with Weaviate's semantics: a text value is tokenized with the property's
tokenization (word drops stopwords) and Equal means "has every token" — so Equal("a.md") on a
word-tokenized property also matches "docs/a.md". Built from the gRPC Filters message or from
the REST/GraphQL JSON form; the checks and messages follow grpc/v1/filters.go and
inverted/searcher.go."""

from __future__ import annotations

import fnmatch
import math
import operator
from dataclasses import dataclass, field
from typing import Any

from . import refs
from . import schema as sch
from .errors import Unprocessable
from .search import stopwords, term_counts, tokenize
from .store import Collection, Store, StoredObject
from .values import parse_date

_PB_OPERATORS = {1: "Equal", 2: "NotEqual", 3: "GreaterThan", 4: "GreaterThanEqual",
                 5: "LessThan", 6: "LessThanEqual", 7: "And", 8: "Or", 9: "WithinGeoRange",
                 10: "Like", 11: "IsNull", 12: "ContainsAny", 13: "ContainsAll"}
_COMPARE = {"Equal": operator.eq, "NotEqual": operator.ne, "GreaterThan": operator.gt,
            "GreaterThanEqual": operator.ge, "LessThan": operator.lt,
            "LessThanEqual": operator.le}
_VALUE_FIELD = {"text": "valueText", "uuid": "valueText", "date": "valueDate", "int": "valueInt",
                "number": "valueNumber", "boolean": "valueBoolean"}
_TIMESTAMPS = ("_creationTimeUnix", "_lastUpdateTimeUnix")


@dataclass
class Clause:
    op: str
    operands: list[Clause] = field(default_factory=list)
    prop: str = ""
    kind: str = ""
    definition: dict[str, Any] | None = None
    value: Any = None


def _target_path(coll: Collection, target: Any) -> list[str]:
    """FilterTarget as the old `on` path: [prop] or [refProp, TargetClass, ...]."""
    which = target.WhichOneof("target")
    if which == "property":
        return [target.property]
    if which == "count":
        return [target.count.on]
    ref = getattr(target, which)
    if which == "single_target":
        prop = sch.property_of(coll.schema, ref.on[:1].lower() + ref.on[1:])
        if prop is None:
            raise _no_such(ref.on, coll)
        return [ref.on, prop["dataType"][0], *_target_path(coll, ref.target)]
    return [ref.on, ref.target_collection, *_target_path(coll, ref.target)]


def from_proto(coll: Collection, pb: Any, store: Store | None = None) -> Clause:
    op = _PB_OPERATORS.get(int(pb.operator))
    if op is None:
        raise Unprocessable(f"unknown filter operator {pb.operator}")
    if op in ("And", "Or"):
        return Clause(op, [from_proto(coll, child, store) for child in pb.filters])
    path = _target_path(coll, pb.target) if pb.HasField("target") else list(pb.on)
    if len(path) % 2 != 1:
        raise Unprocessable(f"paths needs to have a uneven number of components: property, "
                            f"class, property, ...., got {path}")
    which = pb.WhichOneof("test_value")
    if which is None:
        raise Unprocessable(f"unknown value type {which}")
    raw = getattr(pb, which)
    if which.endswith("_array"):
        raw = list(raw.values)
    elif which == "value_geo":
        raw = {"latitude": raw.latitude, "longitude": raw.longitude, "distance": raw.distance}
    field_name = "value" + "".join(p.title() for p in which.split("_")[1:])
    return _path_clause(store, coll, path, op, raw, field_name)


def from_json(coll: Collection, where: dict[str, Any], store: Store | None = None) -> Clause:
    op = str(where.get("operator", ""))
    if op in ("And", "Or"):
        operands = where.get("operands") or []
        return Clause(op, [from_json(coll, child, store) for child in operands])
    path = [str(p) for p in where.get("path") or []]
    for key, raw in where.items():
        if key.startswith("value"):
            return _path_clause(store, coll, path, op, raw, key)
    raise Unprocessable("no value in where filter")


def _path_clause(store: Store | None, coll: Collection, path: list[str], op: str, raw: Any,
                 field_name: str) -> Clause:
    if len(path) == 1:
        return compile_clause(coll, op, path[0], raw, field_name)
    if store is None or len(path) < 3:
        raise Unprocessable(f"invalid filter path {path}")
    name = path[0][:1].lower() + path[0][1:]
    prop = sch.property_of(coll.schema, name)
    if prop is None or not sch.is_reference(prop):
        raise _no_such(name, coll)
    linked = store.find(path[1])
    if linked is None or linked.name not in prop["dataType"]:
        raise Unprocessable(f"class {path[1]} is not a target of reference property {name}")
    inner = _path_clause(store, linked, path[2:], op, raw, field_name)
    return Clause("Ref", [inner], prop=name, value=linked.name, definition={"store": store})


def _no_such(name: str, coll: Collection) -> Unprocessable:
    return Unprocessable(f"no such prop with name '{name}' found in class '{coll.name}' in the "
                         "schema. Check your schema files for which properties in this class "
                         "are available")


def _check_value(kind: str, raw: Any, field_name: str, is_array: bool) -> None:
    scalars = raw if isinstance(raw, list) else [raw]
    ok = all(
        (isinstance(v, str) if kind in ("text", "uuid", "date") else
         isinstance(v, bool) if kind == "boolean" else
         isinstance(v, int | float) and not isinstance(v, bool))
        for v in scalars)
    if kind == "int" and ok:
        for v in scalars:
            if float(v) != int(v):
                raise Unprocessable(f"filtering for integer, but received a floating point "
                                    f"number {v}")
    if not ok:
        want = _VALUE_FIELD.get(kind, "valueText") + ("Array" if is_array else "")
        raise Unprocessable(f'data type filter cannot use "{field_name}" on type "{kind}", '
                            f'use "{want}" instead')


def compile_clause(coll: Collection, op: str, path: str, raw: Any, field_name: str) -> Clause:
    cls = coll.schema
    if op not in _COMPARE and op not in ("Like", "IsNull", "ContainsAny", "ContainsAll",
                                         "WithinGeoRange"):
        raise Unprocessable(f"unknown filter operator {op}")
    is_array = isinstance(raw, list)
    if op in ("ContainsAny", "ContainsAll") and not is_array:
        raw, is_array = [raw], True
    if path == "_id":
        _check_value("text", raw, field_name, is_array)
        value = [str(v).lower() for v in raw] if is_array else str(raw).lower()
        return Clause(op, prop="_id", kind="uuid", value=value)
    if path in _TIMESTAMPS:
        if not cls["invertedIndexConfig"].get("indexTimestamps"):
            raise Unprocessable(f"timestamps must be indexed to be filterable! add "
                                f"`IndexTimestamps: true` to the InvertedIndexConfig in "
                                f"{coll.name}")
        scalars = raw if is_array else [raw]
        stamps = [int(v) if str(v).lstrip("-").isdigit() else
                  int(parse_date(str(v)).timestamp() * 1000) for v in scalars]
        return Clause(op, prop=path, kind="timestamp", value=stamps if is_array else stamps[0])
    if path.startswith("len(") and path.endswith(")"):
        if not cls["invertedIndexConfig"].get("indexPropertyLength"):
            raise Unprocessable(f"Property length must be indexed to be filterable! add "
                                f"`IndexPropertyLength: true` to the invertedIndexConfig in "
                                f"{coll.name}")
        _check_value("int", raw, field_name, is_array)
        return Clause(op, prop=path[4:-1], kind="length", value=raw)
    name = path[:1].lower() + path[1:]
    definition = sch.property_of(cls, name)
    if definition is None:
        raise _no_such(name, coll)
    if sch.is_reference(definition):  # a reference property alone: its count
        _check_value("int", raw, field_name, is_array)
        return Clause(op, prop=name, kind="refcount", value=raw)
    if op == "IsNull":
        if not cls["invertedIndexConfig"].get("indexNullState"):
            raise Unprocessable(f"Nullstate must be indexed to be filterable! add "
                                f"`indexNullState: true` to the invertedIndexConfig in "
                                f"{coll.name}")
        _check_value("boolean", raw, field_name, is_array)
        return Clause(op, prop=name, kind="null", definition=definition, value=bool(raw))
    if not definition.get("indexFilterable") and not definition.get("indexSearchable"):
        raise Unprocessable(f"Filtering by property '{name}' requires inverted index. Is "
                            f"`indexFilterable` option of property '{name}' enabled? Set it to "
                            "`true` or leave empty")
    kind = sch.base_type(definition)
    if op == "WithinGeoRange" or kind == "geoCoordinates":
        if op != "WithinGeoRange" or kind != "geoCoordinates" or not isinstance(raw, dict):
            raise Unprocessable(f"operator {op} cannot be used on property {name} of type "
                                f"{kind}; geo properties take WithinGeoRange and a valueGeoRange")
        return Clause(op, prop=name, kind="geo", definition=definition, value=raw)
    _check_value(kind, raw, field_name, is_array)
    if kind == "text" and op in ("Equal", "NotEqual", "Like", "ContainsAny", "ContainsAll"):
        stops = stopwords(cls) if definition["tokenization"] == "word" else frozenset()
        groups = []
        for text in raw if is_array else [raw]:
            terms = [t for t in tokenize(definition["tokenization"], text, wildcards=op == "Like")
                     if t not in stops]
            if not terms:
                raise Unprocessable("invalid search term, only stopwords provided. Stopwords "
                                    "can be configured in class.invertedIndexConfig.stopwords")
            groups.append(terms)
        return Clause(op, prop=name, kind="text", definition=definition, value=groups)
    if kind == "date":
        value: Any = [parse_date(v) for v in raw] if is_array else parse_date(raw)
    elif kind == "uuid":
        value = [str(v).lower() for v in raw] if is_array else str(raw).lower()
    else:
        value = raw
    return Clause(op, prop=name, kind=kind, definition=definition, value=value)


def _stored(clause: Clause, obj: StoredObject) -> list[Any]:
    if clause.prop == "_id":
        return [obj.uuid]
    if clause.kind == "timestamp":
        return [obj.created if clause.prop == "_creationTimeUnix" else obj.updated]
    value = obj.properties.get(clause.prop)
    values = value if isinstance(value, list) else ([] if value is None else [value])
    if clause.kind == "date":
        return [parse_date(v) for v in values]
    return values


def matches(clause: Clause, obj: StoredObject) -> bool:
    op = clause.op
    if op == "And":
        return all(matches(c, obj) for c in clause.operands)
    if op == "Or":
        return any(matches(c, obj) for c in clause.operands)
    if op == "Ref":
        assert clause.definition is not None
        linked = refs.targets(clause.definition["store"], obj.properties.get(clause.prop))
        return any(matches(clause.operands[0], tobj) for tcoll, tobj in linked
                   if tcoll.name == clause.value)
    if clause.kind == "geo":
        where = obj.properties.get(clause.prop)
        return where is not None and _meters(where, clause.value) <= clause.value["distance"]
    if clause.kind == "refcount":
        return bool(_COMPARE[op](len(obj.properties.get(clause.prop) or []), clause.value))
    if clause.kind == "null":
        value = obj.properties.get(clause.prop)
        return (value is None or value == []) == clause.value
    if clause.kind == "length":
        value = obj.properties.get(clause.prop)
        length = 0 if value is None else len(value)
        return bool(_COMPARE[op](length, clause.value))
    if clause.kind == "text" and isinstance(clause.value, list) and op in (
            "Equal", "NotEqual", "Like", "ContainsAny", "ContainsAll"):
        assert clause.definition is not None
        have = term_counts(obj, clause.definition)
        if op == "NotEqual":
            return all(t not in have for t in clause.value[0])
        if op == "Like":
            return all(any(fnmatch.fnmatchcase(h, t) for h in have) for t in clause.value[0])
        hits = [all(t in have for t in terms) for terms in clause.value]
        return all(hits) if op == "ContainsAll" else any(hits)
    values = _stored(clause, obj)
    if op in ("ContainsAny", "ContainsAll"):
        found = [any(v == want for v in values) for want in clause.value]
        return all(found) if op == "ContainsAll" else any(found)
    if op == "Like":
        return any(fnmatch.fnmatchcase(str(v), str(clause.value)) for v in values)
    if op == "NotEqual":
        return not any(v == clause.value for v in values)
    compare = _COMPARE[op]
    return any(compare(v, clause.value) for v in values)


def _meters(a: dict[str, float], b: dict[str, float]) -> float:
    """Great-circle distance (haversine), the way geo filters measure."""
    lat1, lat2 = math.radians(a["latitude"]), math.radians(b["latitude"])
    dlat, dlon = lat2 - lat1, math.radians(b["longitude"] - a["longitude"])
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * 6371000.0 * math.asin(math.sqrt(h))


def select(coll: Collection, clause: Clause | None) -> list[StoredObject]:
    """The objects a filter lets through, in doc-id (insertion) order."""
    objs = coll.in_doc_order()
    if clause is None:
        return objs
    return [o for o in objs if matches(clause, o)]
