"""Between protobuf messages and stored values: batch objects in (base.proto's typed arrays and
a Struct for scalars), properties and vectors out (properties.proto Values, float32 bytes)."""

from __future__ import annotations

import struct
from array import array
from typing import Any

from google.protobuf import json_format

from .errors import Unprocessable
from .store import f32
from .stubs import base_pb2, properties_pb2
from .values import ARRAY_OF

SINGLE = base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32
MULTI = base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32


def floats(raw: bytes) -> array:
    arr = array("f")
    arr.frombytes(raw)
    return arr


def vector_from(msg: Any) -> array | None:
    """A query or object vector from whichever field the client filled (vectors, bytes, floats)."""
    for vec in getattr(msg, "vectors", ()):
        if vec.type == MULTI:
            raise Unprocessable("multi-vectors are not supported by the stand-in")
        return floats(vec.vector_bytes)
    if getattr(msg, "vector_bytes", b""):
        return floats(msg.vector_bytes)
    if len(getattr(msg, "vector", ())):
        return f32(msg.vector)
    return None


def object_vectors(pb: Any) -> dict[str, array]:
    out = {}
    for vec in pb.vectors:
        if vec.type == MULTI:
            raise Unprocessable("multi-vectors are not supported by the stand-in")
        out[vec.name] = floats(vec.vector_bytes)
    return out


def _object_value(pb: Any) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(pb.non_ref_properties)
    for prop in pb.text_array_properties:
        out[prop.prop_name] = list(prop.values)
    for prop in pb.int_array_properties:
        out[prop.prop_name] = list(prop.values)
    for prop in pb.number_array_properties:
        if prop.values_bytes:
            count = len(prop.values_bytes) // 8
            out[prop.prop_name] = list(struct.unpack(f"{count}d", prop.values_bytes))
        else:
            out[prop.prop_name] = list(prop.values)
    for prop in pb.boolean_array_properties:
        out[prop.prop_name] = list(prop.values)
    for prop in pb.object_properties:
        out[prop.prop_name] = _object_value(prop.value)
    for prop in pb.object_array_properties:
        out[prop.prop_name] = [_object_value(v) for v in prop.values]
    for name in pb.empty_list_props:
        out[name] = []
    return out


def batch_properties(pb: Any) -> dict[str, Any]:
    """BatchObject.Properties as plain values (numbers from the Struct arrive as floats;
    references become beacons, the class left out where the property has one target)."""
    out = _object_value(pb)
    for ref in pb.single_target_ref_props:
        out[ref.prop_name] = [{"beacon": f"weaviate://localhost/{u}"} for u in ref.uuids]
    for ref in pb.multi_target_ref_props:
        out[ref.prop_name] = [{"beacon": f"weaviate://localhost/{ref.target_collection}/{u}"}
                              for u in ref.uuids]
    return out


def _guess_value(value: Any) -> Any:
    if value is None:
        return properties_pb2.Value(null_value=0)
    if isinstance(value, bool):
        return properties_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return properties_pb2.Value(int_value=value)
    if isinstance(value, float):
        return properties_pb2.Value(number_value=value)
    if isinstance(value, dict):
        return properties_pb2.Value(object_value=properties_pb2.Properties(
            fields={k: _guess_value(v) for k, v in value.items()}))
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return properties_pb2.Value(list_value=properties_pb2.ListValue(
                object_values=properties_pb2.ObjectValues(values=[
                    properties_pb2.Properties(fields={k: _guess_value(x) for k, x in v.items()})
                    for v in value])))
        return properties_pb2.Value(list_value=properties_pb2.ListValue(
            text_values=properties_pb2.TextValues(values=[str(v) for v in value])))
    return properties_pb2.Value(text_value=str(value))


def _nested_fields(value: dict[str, Any], nested: list[dict[str, Any]],
                   wanted: Any) -> Any:
    """An object's fields by their nested types; `wanted` (names, sub-selections) or None."""
    defs = {p["name"]: p for p in nested}
    names = list(value) if wanted is None else [*wanted[0], *wanted[1]]
    fields = {}
    for key in names:
        if key not in value or key not in defs:
            continue
        sub = None if wanted is None else wanted[1].get(key)
        fields[key] = to_value(defs[key]["dataType"][0], value[key],
                               defs[key].get("nestedProperties"), sub)
    return properties_pb2.Properties(fields=fields)


def to_value(kind: str, value: Any, nested: list[dict[str, Any]] | None = None,
             wanted: Any = None) -> Any:
    """A stored property as the Value Weaviate's mapper (grpc/v1/mapping.go) sends; objects
    follow their nested properties' types, cut to `wanted` when the request names some."""
    if value is None:
        return properties_pb2.Value(null_value=0)
    if kind == "object" and nested is not None:
        return properties_pb2.Value(object_value=_nested_fields(value, nested, wanted))
    if kind == "object[]" and nested is not None:
        return properties_pb2.Value(list_value=properties_pb2.ListValue(
            object_values=properties_pb2.ObjectValues(
                values=[_nested_fields(v, nested, wanted) for v in value])))
    base = ARRAY_OF.get(kind)
    if base is not None:
        lv = properties_pb2.ListValue
        if base == "text":
            listed = lv(text_values=properties_pb2.TextValues(values=value))
        elif base == "int":
            listed = lv(int_values=properties_pb2.IntValues(
                values=struct.pack(f"<{len(value)}q", *value)))
        elif base == "number":
            listed = lv(number_values=properties_pb2.NumberValues(
                values=struct.pack(f"<{len(value)}d", *value)))
        elif base == "boolean":
            listed = lv(bool_values=properties_pb2.BoolValues(values=value))
        elif base == "date":
            listed = lv(date_values=properties_pb2.DateValues(values=value))
        else:
            listed = lv(uuid_values=properties_pb2.UuidValues(values=value))
        return properties_pb2.Value(list_value=listed)
    if kind == "text":
        return properties_pb2.Value(text_value=value)
    if kind == "int":
        return properties_pb2.Value(int_value=int(value))
    if kind == "number":
        return properties_pb2.Value(number_value=float(value))
    if kind == "boolean":
        return properties_pb2.Value(bool_value=bool(value))
    if kind == "date":
        return properties_pb2.Value(date_value=value)
    if kind == "uuid":
        return properties_pb2.Value(uuid_value=value)
    if kind == "blob":
        return properties_pb2.Value(blob_value=value)
    if kind == "geoCoordinates":
        return properties_pb2.Value(geo_value=properties_pb2.GeoCoordinate(
            latitude=value["latitude"], longitude=value["longitude"]))
    return _guess_value(value)


def uuid_bytes(uid: str) -> bytes:
    """idToByte: the UUID as a big integer's minimal big-endian bytes."""
    number = int(uid.replace("-", ""), 16)
    return number.to_bytes((number.bit_length() + 7) // 8, "big")
