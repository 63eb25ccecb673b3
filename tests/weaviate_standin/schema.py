"""Collection definitions as Weaviate 1.32 stores them: the defaults it fills in on create, the
checks it makes, and which settings an update may change (usecases/schema/class.go,
entities/vectorindex/*/config.go). What GET /v1/schema returns is built here."""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import Unprocessable
from .values import ARRAY_OF, PRIMITIVE_TYPES

CLASS_NAME = re.compile(r"^[A-Z][_0-9A-Za-z]{0,254}$")
PROPERTY_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,230}$")
VECTOR_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,229}$")
RESERVED_PROPERTIES = ("_additional", "_id", "id")
DISTANCES = ("cosine", "dot", "l2-squared", "manhattan", "hamming")
TOKENIZATIONS = ("word", "lowercase", "whitespace", "field", "trigram")
TEXT_TYPES = ("text", "text[]")
IMMUTABLE = {  # adapters/repos/db/vector/{hnsw/config_update.go,flat/index.go}
    "hnsw": ("efConstruction", "maxConnections", "cleanupIntervalSeconds", "distance",
             "multivector.enabled", "skipDefaultQuantization"),
    "flat": ("distance", "pq.cache", "pq.enabled", "bq.enabled"),
}


def hnsw_defaults() -> dict[str, Any]:
    return {
        "skip": False, "cleanupIntervalSeconds": 300, "maxConnections": 32,
        "efConstruction": 128, "ef": -1, "dynamicEfMin": 100, "dynamicEfMax": 500,
        "dynamicEfFactor": 8, "vectorCacheMaxObjects": 1000000000000,
        "flatSearchCutoff": 40000, "distance": "cosine",
        "pq": {"enabled": False, "bitCompression": False, "segments": 0, "centroids": 256,
               "trainingLimit": 100000,
               "encoder": {"type": "kmeans", "distribution": "log-normal"}},
        "bq": {"enabled": False},
        "sq": {"enabled": False, "trainingLimit": 100000, "rescoreLimit": 20},
        "rq": {"enabled": False, "bits": 8, "rescoreLimit": 20},
        "filterStrategy": "sweeping",
        "multivector": {"enabled": False,
                        "muvera": {"enabled": False, "ksim": 4, "dprojections": 16,
                                   "repetitions": 10},
                        "aggregation": "maxSim"},
        "skipDefaultQuantization": False, "trackDefaultQuantization": False,
    }


def flat_defaults() -> dict[str, Any]:
    off = {"enabled": False, "rescoreLimit": -1, "cache": False}
    return {"distance": "cosine", "vectorCacheMaxObjects": 1000000000000,
            "pq": dict(off), "bq": dict(off), "sq": dict(off)}


def _merge(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _index_config(index_type: str, given: Any, where: str) -> dict[str, Any]:
    if index_type not in ("hnsw", "flat"):
        if index_type == "dynamic":
            raise Unprocessable("the dynamic index can only be created under async indexing "
                                "environment (ASYNC_INDEXING=true)")
        raise Unprocessable(f"{where}: unsupported vector index type: {index_type!r}")
    config = hnsw_defaults() if index_type == "hnsw" else flat_defaults()
    if given is not None:
        if not isinstance(given, dict):
            raise Unprocessable(f"{where}: input must be a non-nil map")
        _merge(config, copy.deepcopy(given))
    if config["distance"] not in DISTANCES:
        raise Unprocessable(f"{where}: invalid distance: {config['distance']!r}")
    if index_type == "hnsw":
        if config["maxConnections"] < 4:
            raise Unprocessable(f"{where}: maxConnections must be a positive integer with a "
                                "minimum of 4")
        if config["efConstruction"] < 4:
            raise Unprocessable(f"{where}: efConstruction must be a positive integer with a "
                                "minimum of 4")
        if config["multivector"].get("enabled"):
            raise Unprocessable(f"{where}: multi-vector indexes are not supported by the "
                                "stand-in")
    return config


def _vectorizer_name(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    return str(value)


def _check_module(name: str, modules: Any = None) -> None:
    if name != "none" and (modules is None or name not in modules.enabled):
        raise Unprocessable(f'no module with name "{name}" present')


def _reference(name: str, prop: dict[str, Any], targets: list[str],
               classes: list[str]) -> dict[str, Any]:
    for target in targets:
        if target not in classes:
            raise Unprocessable(f"property '{name}': invalid dataType: {targets}: reference "
                                "property to nonexistent class")
    out: dict[str, Any] = {"dataType": targets}
    if prop.get("description"):
        out["description"] = prop["description"]
    out.update(indexFilterable=prop.get("indexFilterable", True) is not False,
               indexSearchable=False, indexRangeFilters=False, name=name)
    return out


def is_reference(prop: dict[str, Any]) -> bool:
    return str(prop["dataType"][0])[:1].isupper()


def _property(prop: dict[str, Any], class_name: str, classes: list[str]) -> dict[str, Any]:
    name = str(prop.get("name") or "")
    if not name:
        raise Unprocessable("property must contain name")
    if not PROPERTY_NAME.match(name):
        raise Unprocessable(
            f"'{name}' is not a valid property name. Property names in Weaviate are restricted "
            "to valid GraphQL names, which must be “/[_A-Za-z][_0-9A-Za-z]{0,230}/”.")
    name = name[0].lower() + name[1:]
    if name in RESERVED_PROPERTIES:
        raise Unprocessable(f"'{name}' is a reserved property name")
    data_type = prop.get("dataType")
    if not isinstance(data_type, list) or not data_type:
        raise Unprocessable("property must contain dataType")
    kind = str(data_type[0])
    if kind[:1].isupper():
        return _reference(name, prop, [str(t) for t in data_type], classes)
    if kind in ("string", "string[]"):  # migrated since v1.19
        kind = "text" + kind[6:]
    if kind not in PRIMITIVE_TYPES:
        raise Unprocessable(
            f"property '{name}': invalid dataType: {data_type}: dataType {kind!r} not found")
    out: dict[str, Any] = {"dataType": [kind]}
    if prop.get("description"):
        out["description"] = prop["description"]
    searchable_default = kind in TEXT_TYPES
    for key, default in (("indexFilterable", kind not in ("blob",)),
                         ("indexSearchable", searchable_default),
                         ("indexRangeFilters", False)):
        value = prop.get(key)
        out[key] = default if value is None else bool(value)
    if out["indexSearchable"] and kind not in TEXT_TYPES:
        raise Unprocessable("`indexSearchable` is not allowed for other than text/text[] "
                            "data types")
    if out["indexRangeFilters"] and kind not in ("int", "number", "date"):
        raise Unprocessable("`indexRangeFilters` is allowed only for number/int/date data types")
    if prop.get("moduleConfig"):
        out["moduleConfig"] = prop["moduleConfig"]
    out["name"] = name
    tokenization = prop.get("tokenization") or ""
    if kind in TEXT_TYPES:
        tokenization = tokenization or "word"
        if tokenization not in TOKENIZATIONS:
            raise Unprocessable(
                f"tokenization '{tokenization}' is not allowed for data type '{kind}'")
        out["tokenization"] = tokenization
    elif tokenization:
        raise Unprocessable(f"tokenization is not allowed for data type '{kind}'")
    if kind in ("object", "object[]"):
        if not prop.get("nestedProperties"):
            raise Unprocessable(f"property '{name}': At least one nested property is required "
                                f"for data type object/object[]")
        out["nestedProperties"] = _nested(prop["nestedProperties"])
    return out


def _go(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _dig(config: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        if not isinstance(config, dict):
            return None
        config = config.get(key)  # type: ignore[assignment]
    return config


def _named_vector(vname: str, entry: dict[str, Any], modules: Any = None) -> dict[str, Any]:
    if not VECTOR_NAME.match(vname):
        raise Unprocessable(f"target vector name {vname!r} is not valid")
    vectorizer = entry.get("vectorizer") or {"none": {}}
    module = _vectorizer_name(vectorizer)
    _check_module(module, modules)
    vectorizer = vectorizer if isinstance(vectorizer, dict) else {vectorizer: {}}
    if module != "none":
        vectorizer = {module: modules.fill(module, dict(vectorizer[module] or {}))}
    index_type = entry.get("vectorIndexType") or "hnsw"
    return {
        "vectorizer": vectorizer,
        "vectorIndexType": index_type,
        "vectorIndexConfig": _index_config(index_type, entry.get("vectorIndexConfig"),
                                           f"target vector {vname!r}"),
    }


def _nested(props: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """setNestedPropertiesDefaults: indexing flags and tokenization on every level."""
    out = []
    for raw in props:
        prop = dict(raw)
        kind = str(prop["dataType"][0])
        prop.setdefault("indexFilterable", kind != "blob")
        prop.setdefault("indexSearchable", kind in TEXT_TYPES)
        prop.setdefault("indexRangeFilters", False)
        if kind in TEXT_TYPES:
            prop.setdefault("tokenization", "word")
        if prop.get("nestedProperties"):
            prop["nestedProperties"] = _nested(prop["nestedProperties"])
        out.append(prop)
    return out


def check_class_name(raw: str) -> str:
    name = raw[:1].upper() + raw[1:]
    if not CLASS_NAME.match(name):
        raise Unprocessable(f"'{raw}' is not a valid class name")
    return name


def new_class(body: dict[str, Any], existing: list[str], modules: Any = None
              ) -> dict[str, Any]:
    """The class as Weaviate stores it after POST /v1/schema, or Unprocessable."""
    name = check_class_name(str(body.get("class") or ""))
    for other in existing:
        if other == name:
            raise Unprocessable(f"class name {name} already exists")
        if other.lower() == name.lower():
            raise Unprocessable(f'class already exists: found similar class "{other}"')
    mt = body.get("multiTenancyConfig") or {}
    if mt.get("enabled"):
        raise Unprocessable("multi-tenancy is not supported by the stand-in")
    legacy = any(body.get(k) not in (None, "") for k in
                 ("vectorizer", "vectorIndexType", "vectorIndexConfig"))
    named = body.get("vectorConfig") or {}
    if legacy and named:
        raise Unprocessable("creating a class with both a class level vector index and named "
                            "vectors is forbidden")
    out: dict[str, Any] = {"class": name}
    if body.get("description"):
        out["description"] = body["description"]
    out["invertedIndexConfig"] = _inverted(body.get("invertedIndexConfig") or {})
    if body.get("moduleConfig"):
        out["moduleConfig"] = body["moduleConfig"]
    out["multiTenancyConfig"] = {"enabled": False, "autoTenantCreation": False,
                                 "autoTenantActivation": False}
    props: list[dict[str, Any]] = []
    for raw in body.get("properties") or []:
        prop = _property(raw, name, [*existing, name])
        if any(p["name"].lower() == prop["name"].lower() for p in props):
            raise Unprocessable(f"class {name!r}: conflict for property {prop['name']!r}: "
                                "already in use or provided multiple times")
        props.append(prop)
    out["properties"] = props
    replication = dict(body.get("replicationConfig") or {})
    factor = int(replication.get("factor") or 1)
    if factor > 1:
        raise Unprocessable(f"could not find enough weaviate nodes for replication: 1 available, "
                            f"{factor} requested")
    out["replicationConfig"] = {"factor": 1, "asyncEnabled": bool(replication.get("asyncEnabled")),
                                "deletionStrategy": replication.get("deletionStrategy")
                                or "NoAutomatedResolution"}
    out["shardingConfig"] = {"actualCount": 1, "actualVirtualCount": 128, "desiredCount": 1,
                             "desiredVirtualCount": 128, "function": "murmur3", "key": "_id",
                             "strategy": "hash", "virtualPerPhysical": 128}
    if named:
        vectors: dict[str, Any] = {}
        for vname, entry in named.items():
            vectors[vname] = _named_vector(vname, entry, modules)
        out["vectorConfig"] = vectors
    else:
        vectorizer = str(body.get("vectorizer") or "none")
        _check_module(vectorizer, modules)
        if vectorizer != "none":
            given = (out.get("moduleConfig") or {}).get(vectorizer) or {}
            out["moduleConfig"] = {**(out.get("moduleConfig") or {}),
                                   vectorizer: modules.fill(vectorizer, dict(given))}
        index_type = str(body.get("vectorIndexType") or "hnsw")
        out["vectorIndexConfig"] = _index_config(index_type, body.get("vectorIndexConfig"),
                                                 "vector index config")
        out["vectorIndexType"] = index_type
        out["vectorizer"] = vectorizer
    return out


def _inverted(given: dict[str, Any]) -> dict[str, Any]:
    bm25 = given.get("bm25") or {}
    stop = given.get("stopwords") or {}
    out: dict[str, Any] = {
        "bm25": {"b": float(bm25.get("b", 0.75)), "k1": float(bm25.get("k1", 1.2))},
        "cleanupIntervalSeconds": int(given.get("cleanupIntervalSeconds") or 60),
        "stopwords": {"additions": stop.get("additions"), "preset": stop.get("preset") or "en",
                      "removals": stop.get("removals")},
        "usingBlockMaxWAND": True,
    }
    if out["stopwords"]["preset"] not in ("en", "none"):
        raise Unprocessable(f"stopwordPreset '{out['stopwords']['preset']}' does not exist")
    for flag in ("indexNullState", "indexPropertyLength", "indexTimestamps"):
        if given.get(flag):
            out[flag] = True
    return out


def add_property(cls: dict[str, Any], body: dict[str, Any],
                 classes: list[str] | None = None) -> dict[str, Any]:
    prop = _property(body, cls["class"], classes or [cls["class"]])
    for other in cls["properties"]:
        if other["name"].lower() == prop["name"].lower():
            raise Unprocessable(f"class {cls['class']!r}: conflict for property "
                                f"{prop['name']!r}: already in use or provided multiple times")
    cls["properties"].append(prop)
    return prop


def update_class(cls: dict[str, Any], body: dict[str, Any], modules: Any = None) -> None:
    """PUT /v1/schema/{name}: change what Weaviate lets change, refuse the rest in its words."""
    new_name = str(body.get("class") or cls["class"])
    if new_name != cls["class"]:
        raise Unprocessable(f'class name is immutable: attempted change from "{cls["class"]}" '
                            f'to "{new_name}"')
    inverted = _inverted(body.get("invertedIndexConfig") or cls["invertedIndexConfig"])
    for flag, label in (("indexTimestamps", "indexTimestamp"),
                        ("indexNullState", "indexNullState"),
                        ("indexPropertyLength", "indexPropertyLength")):
        before, after = bool(cls["invertedIndexConfig"].get(flag)), bool(inverted.get(flag))
        if before != after:
            raise Unprocessable(f'"{label}" setting is immutable. Value changed from '
                                f'"{str(before).lower()}" to "{str(after).lower()}"')
    old_props = {p["name"]: p for p in cls["properties"]}
    for raw in body.get("properties") or []:
        old = old_props.get(str(raw.get("name")))
        if old is None or list(raw.get("dataType") or []) != old["dataType"]:
            raise Unprocessable("properties cannot be updated through updating the class. Use "
                                "the add property feature (e.g. \"POST /v1/schema/{className}/"
                                "properties\") to add additional properties")
    updates: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if "vectorIndexConfig" in cls and body.get("vectorIndexConfig") is not None:
        updates.append((cls["vectorIndexType"], cls["vectorIndexConfig"],
                        body["vectorIndexConfig"]))
    added: dict[str, Any] = {}
    for vname, entry in (body.get("vectorConfig") or {}).items():
        current = cls.get("vectorConfig", {}).get(vname)
        if current is None:  # adding a named vector (Weaviate >= 1.31)
            added[vname] = _named_vector(vname, entry, modules)
            continue
        if entry.get("vectorizer") is not None and entry["vectorizer"] != current["vectorizer"]:
            raise Unprocessable(f"vectorizer config of vector {vname!r} is immutable")
        if entry.get("vectorIndexConfig") is not None:
            updates.append((current["vectorIndexType"], current["vectorIndexConfig"],
                            entry["vectorIndexConfig"]))
    for index_type, current, given in updates:
        for path in IMMUTABLE.get(index_type, ()):
            before, after = _dig(current, path), _dig(given, path)
            if after is not None and after != before:
                label = path.split(".")[0] if path.endswith(".enabled") else path
                raise Unprocessable(f'{label} is immutable: attempted change from '
                                    f'"{_go(before)}" to "{_go(after)}"')
    for _, current, given in updates:
        _merge(current, copy.deepcopy(given))
    if added:
        cls.setdefault("vectorConfig", {}).update(added)
    cls["invertedIndexConfig"] = inverted
    if body.get("description") is not None:
        cls["description"] = body["description"]
    for raw in body.get("properties") or []:
        if raw.get("description") is not None:
            old_props[str(raw["name"])]["description"] = raw["description"]


def vector_names(cls: dict[str, Any]) -> list[str]:
    """Names of the collection's vector indexes; "" is the class-level (legacy) one, which a
    collection may have beside named vectors added later (Weaviate >= 1.31)."""
    return ([""] if "vectorIndexConfig" in cls else []) + list(cls.get("vectorConfig", {}))


def vector_distance(cls: dict[str, Any], name: str) -> str:
    if name == "":
        return str(cls["vectorIndexConfig"]["distance"])
    return str(cls["vectorConfig"][name]["vectorIndexConfig"]["distance"])


def property_of(cls: dict[str, Any], name: str) -> dict[str, Any] | None:
    for prop in cls["properties"]:
        if prop["name"] == name:
            return prop
    return None


def base_type(prop: dict[str, Any]) -> str:
    kind = str(prop["dataType"][0])
    return ARRAY_OF.get(kind, kind)
