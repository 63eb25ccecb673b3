"""Cross-references: stored as Weaviate stores them, a list of beacons
("weaviate://localhost/<Class>/<uuid>"), added in batches, through the references endpoints
or with the object, and resolved when a query asks for them."""

from __future__ import annotations

import re
import uuid as uuid_mod
from typing import TYPE_CHECKING, Any

from . import schema as sch
from .errors import Unprocessable

if TYPE_CHECKING:
    from .store import Collection, Store, StoredObject

_BEACON = re.compile(r"^weaviate://localhost/(?:([A-Za-z][_0-9A-Za-z]*)/)?([0-9a-fA-F-]{32,36})$")


def beacon(class_name: str, uid: str) -> str:
    return f"weaviate://localhost/{class_name}/{uid}"


def parse(value: str) -> tuple[str | None, str]:
    match = _BEACON.match(value)
    if match is None:
        raise Unprocessable(f"invalid cref: invalid beacon {value!r}")
    return match.group(1), str(uuid_mod.UUID(match.group(2)))


def normalize(prop: dict[str, Any], value: Any) -> list[dict[str, str]]:
    """A reference property's value as stored: beacons naming their class."""
    if not isinstance(value, list):
        raise Unprocessable(f"invalid cref: reference property is not a slice {value}")
    out = []
    for item in value:
        if not isinstance(item, dict) or "beacon" not in item:
            raise Unprocessable(f"invalid cref: reference property is not a map: {item!r}")
        cls, uid = parse(str(item["beacon"]))
        if cls is None:  # "weaviate://localhost/<uuid>": the class is the property's target
            cls = prop["dataType"][0]
        if cls not in prop["dataType"]:
            raise Unprocessable(f"invalid cref: target class {cls} is not one of "
                                f"{prop['dataType']}")
        out.append({"beacon": beacon(cls, uid)})
    return out


def targets(store: Store, beacons: Any) -> list[tuple[Collection, StoredObject]]:
    """The objects the beacons point at that still exist."""
    out = []
    for item in beacons or []:
        cls, uid = parse(item["beacon"])
        coll = store.find(cls or "")
        obj = coll.objects.get(uid) if coll is not None else None
        if coll is not None and obj is not None:
            out.append((coll, obj))
    return out


def with_href(beacons: list[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for item in beacons:
        cls, uid = parse(item["beacon"])
        out.append({"beacon": item["beacon"], "href": f"/v1/objects/{cls}/{uid}"})
    return out


def change(store: Store, coll: Collection, uid: str, prop_name: str, body: Any,
           how: str) -> None:
    """POST (add), PUT (replace), DELETE (remove) on /v1/objects/{C}/{id}/references/{prop}."""
    with store.lock:
        obj = coll.objects.get(uid.lower())
        if obj is None:
            raise Unprocessable(f"source object {uid} not found")
        prop = sch.property_of(coll.schema, prop_name)
        if prop is None or not sch.is_reference(prop):
            raise Unprocessable(f"property {prop_name!r} is not a reference property of "
                                f"{coll.name}")
        current = list(obj.properties.get(prop["name"]) or [])
        given = normalize(prop, body if isinstance(body, list) else [body])
        if how == "add":
            current.extend(given)
        elif how == "replace":
            current = given
        else:
            gone = {b["beacon"] for b in given}
            current = [b for b in current if b["beacon"] not in gone]
        obj.properties[prop["name"]] = current


def add_batch(store: Store, refs: list[tuple[str, str, str, str, str]]) -> list[str | None]:
    """(from_class, from_uuid, prop, to_class, to_uuid) each; an error message or None."""
    out: list[str | None] = []
    for from_class, from_uuid, prop, to_class, to_uuid in refs:
        coll = store.find(from_class)
        try:
            if coll is None:
                raise Unprocessable(f"class '{from_class}' not present in schema")
            target = beacon(to_class, to_uuid) if to_class else f"weaviate://localhost/{to_uuid}"
            change(store, coll, from_uuid, prop, {"beacon": target}, "add")
            out.append(None)
        except Unprocessable as err:
            out.append(err.message)
    return out
