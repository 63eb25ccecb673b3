"""What a search returns per object (prepare_reply.go): the selected properties — all non-ref,
non-blob ones unless the request names some, referenced objects when asked, missing values as
nulls — and the metadata the request asked for and the search produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import refs
from . import schema as sch
from .codec import to_value, uuid_bytes
from .errors import Unprocessable
from .search import Hit
from .store import Collection, Store, StoredObject
from .stubs import properties_pb2, search_get_pb2


@dataclass
class Selection:
    names: list[str]
    refs: list[tuple[str, str, Selection, Any]] = field(default_factory=list)
    nested: dict[str, Any] = field(default_factory=dict)  # object prop -> (names, {sub})


def _nested_request(req: Any) -> tuple[list[str], dict[str, Any]]:
    return list(req.primitive_properties), {o.prop_name: _nested_request(o)
                                            for o in req.object_properties}


def _no_such(name: str, coll: Collection) -> Unprocessable:
    return Unprocessable(f"no such prop with name '{name}' found in class '{coll.name}' in the "
                         "schema. Check your schema files for which properties in this class "
                         "are available")


def select_properties(store: Store, coll: Collection, pr: Any) -> Selection:
    everything = [p["name"] for p in coll.schema["properties"]
                  if p["dataType"][0] != "blob" and not sch.is_reference(p)]
    if pr is None:
        return Selection(everything)
    if pr.return_all_nonref_properties:
        names = everything
    else:
        names = [n[:1].lower() + n[1:] for n in pr.non_ref_properties]
        names += [o.prop_name for o in pr.object_properties]
        for name in names:
            if sch.property_of(coll.schema, name) is None:
                raise _no_such(name, coll)
    out = Selection(names, nested={o.prop_name: _nested_request(o)
                                   for o in pr.object_properties})
    for rp in pr.ref_properties:
        name = rp.reference_property[:1].lower() + rp.reference_property[1:]
        prop = sch.property_of(coll.schema, name)
        if prop is None or not sch.is_reference(prop):
            raise _no_such(name, coll)
        target = prop["dataType"][0] if len(prop["dataType"]) == 1 else rp.target_collection
        if not target:
            raise Unprocessable(f"multi target references from collection {coll.name} and "
                                f"property {name} with need an explicitlinked collection. "
                                f"Available linked collections are {prop['dataType']}")
        linked = store.find(target)
        if linked is None:
            raise Unprocessable(f"could not find class {target} in schema")
        sub = select_properties(store, linked, rp.properties if rp.HasField("properties")
                                else None)
        out.refs.append((name, linked.name, sub,
                         rp.metadata if rp.HasField("metadata") else None))
    return out


def properties(store: Store, coll: Collection, sel: Selection, obj: StoredObject) -> Any:
    fields = {}
    for name in sel.names:
        definition = sch.property_of(coll.schema, name) or {"dataType": ["text"]}
        fields[name] = to_value(definition["dataType"][0], obj.properties.get(name),
                                definition.get("nestedProperties"), sel.nested.get(name))
    ref_props = []
    for name, target, sub, meta_req in sel.refs:
        linked = []
        for tcoll, tobj in refs.targets(store, obj.properties.get(name)):
            if tcoll.name == target:
                result = properties(store, tcoll, sub, tobj)
                result.metadata.CopyFrom(metadata(meta_req, Hit(tobj), None))
                linked.append(result)
        if name in obj.properties:  # an emptied reference list still answers, with nothing
            ref_props.append(search_get_pb2.RefPropertiesResult(prop_name=name,
                                                                properties=linked))
    return search_get_pb2.PropertiesResult(
        target_collection=coll.name, ref_props=ref_props, ref_props_requested=bool(sel.refs),
        non_ref_props=properties_pb2.Properties(fields=fields) if fields else None)


def metadata(m: Any, hit: Hit, metric: str | None) -> Any:
    """MetadataResult for the fields asked for; `metric` is the vector search's distance."""
    meta = search_get_pb2.MetadataResult()
    if m is None:
        return meta
    obj = hit.obj
    if m.uuid:
        meta.id = obj.uuid
        meta.id_as_bytes = uuid_bytes(obj.uuid)
    if m.creation_time_unix:
        meta.creation_time_unix, meta.creation_time_unix_present = obj.created, True
    if m.last_update_time_unix:
        meta.last_update_time_unix, meta.last_update_time_unix_present = obj.updated, True
    # explorer.go: distance and certainty only where a search vector was used (not in
    # hybrid), certainty only for cosine; score and explainScore whenever asked for
    if m.distance and metric is not None and hit.distance is not None:
        meta.distance, meta.distance_present = hit.distance, True
    if m.certainty and metric == "cosine" and hit.distance is not None:
        meta.certainty, meta.certainty_present = 1 - hit.distance / 2, True
    if m.score:
        meta.score, meta.score_present = hit.score or 0.0, True
    if m.explain_score:
        meta.explain_score, meta.explain_score_present = hit.explain, True
    names = set(m.vectors)
    if m.vector:
        if "" in obj.vectors:
            vec = obj.vectors[""]
            meta.vector.extend(vec)
            meta.vector_bytes = vec.tobytes()
        names |= {n for n in obj.vectors if n}
    for name in sorted(names):
        vec = obj.vectors.get(name)
        if vec is not None and len(vec):
            meta.vectors.add(name=name, vector_bytes=vec.tobytes(), type=1)
    return meta
