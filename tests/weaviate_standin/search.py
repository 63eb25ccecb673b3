"""Keyword and vector search, the way Weaviate 1.32 ranks: its tokenizers and English stopwords,
BM25F with BlockMax-WAND's scoring (adapters/repos/db/inverted), brute-force distances, and the
two hybrid fusions (usecases/traverser/hybrid). Exhaustive where Weaviate is approximate (HNSW)."""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import schema as sch
from .errors import Unprocessable
from .store import Collection, StoredObject

try:  # optional: exhaustive search over a few thousand vectors is slow in pure Python
    import numpy as np
except ImportError:  # pragma: no cover - the plain loop below does the same, slower
    np = None

STOPWORDS_EN = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with"))
HYBRID_MAX_RESULTS = 100  # QUERY_HYBRID_MAXIMUM_RESULTS
_WORD = re.compile(r"[^\W_]+")


def tokenize(tokenization: str, text: str, wildcards: bool = False) -> list[str]:
    """helpers.Tokenize: word splits on anything not a letter or digit and lowercases."""
    if tokenization == "word":
        if wildcards:
            return [t.lower() for t in re.findall(r"[^\W_]*(?:[*?][^\W_]*)+|[^\W_]+", text)]
        return [t.lower() for t in _WORD.findall(text)]
    if tokenization == "lowercase":
        return [t.lower() for t in text.split()]
    if tokenization == "whitespace":
        return text.split()
    if tokenization == "field":
        stripped = text.strip()
        return [stripped] if stripped else []
    if tokenization == "trigram":
        joined = "".join(_WORD.findall(text)).lower()
        return [joined[i:i + 3] for i in range(len(joined) - 2)]
    return []


def stopwords(cls: dict[str, Any]) -> frozenset[str]:
    conf = cls["invertedIndexConfig"]["stopwords"]
    words = set(STOPWORDS_EN if conf.get("preset", "en") == "en" else ())
    words |= set(conf.get("additions") or ())
    words -= set(conf.get("removals") or ())
    return frozenset(words)


def text_of(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def tokens_of(prop: dict[str, Any], value: Any) -> list[str]:
    out: list[str] = []
    for text in text_of(value):
        out.extend(tokenize(prop.get("tokenization", "word"), text))
    return out


def term_counts(obj: StoredObject, prop: dict[str, Any]) -> Counter[str]:
    """A property's token counts, kept on the object (objects are replaced, never edited)."""
    key = ("tf", prop["name"], prop.get("tokenization", "word"))
    counts = obj.cache.get(key)
    if counts is None:
        counts = obj.cache[key] = Counter(tokens_of(prop, obj.properties.get(prop["name"])))
    return counts


# -- vectors ---------------------------------------------------------------------------------
def distance(metric: str, a: Any, b: Any) -> float:
    if len(a) != len(b):
        raise Unprocessable(f"vector search: vector lengths don't match: {len(b)} vs {len(a)}")
    if metric == "cosine":
        dot = sum(map(operator.mul, a, b))
        norm = math.sqrt(sum(map(operator.mul, a, a)) * sum(map(operator.mul, b, b)))
        return 1.0 - dot / norm if norm else 1.0
    if metric == "dot":
        return -sum(map(operator.mul, a, b))
    if metric == "l2-squared":
        return sum((x - y) * (x - y) for x, y in zip(a, b, strict=True))
    if metric == "manhattan":
        return sum(abs(x - y) for x, y in zip(a, b, strict=True))
    if metric == "hamming":
        return float(sum(1 for x, y in zip(a, b, strict=True) if x != y))
    raise Unprocessable(f"unknown distance {metric}")


def resolve_target(coll: Collection, targets: list[str]) -> str:
    """The vector index a search uses (modelsext / GetTargetVectorOrDefault)."""
    names = sch.vector_names(coll.schema)
    if len(targets) > 1:
        raise Unprocessable("multi target vector search is not supported by the stand-in")
    if not targets or targets[0] == "":
        if "" in names:
            return ""
        if len(names) == 1:
            return names[0]
        raise Unprocessable(f"class {coll.name} has multiple vectors, but no target vectors "
                            "were provided")
    target = targets[0]
    if "" in names and target == "default":
        return ""
    if target not in names:
        raise Unprocessable(f"class {coll.name} does not have named vector {target} configured. "
                            f"Available named vectors [{' '.join(n for n in names if n)}]")
    return target


@dataclass
class Hit:
    obj: StoredObject
    score: float | None = None
    distance: float | None = None
    explain: str = ""
    secondary: float = 0.0


def _matrix(coll: Collection, target: str) -> tuple[list[StoredObject], Any] | None:
    """All of a target's vectors as one float32 matrix (numpy, when installed), rebuilt after
    writes; None without numpy, and the plain loop is used."""
    if np is None:
        return None
    key = ("matrix", target)
    cached = coll.cache.get(key)
    if cached is not None and cached[0] == coll.version:
        return cached[1], cached[2]
    objs = [o for o in coll.in_doc_order() if target in o.vectors]
    if not objs:
        return objs, None
    matrix = np.frombuffer(b"".join(o.vectors[target].tobytes() for o in objs),
                           dtype=np.float32).reshape(len(objs), -1)
    coll.cache[key] = (coll.version, objs, matrix)
    return objs, matrix


def _distances(metric: str, matrix: Any, query: Any) -> Any:
    q = np.asarray(query, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            sims = np.where(norms > 0, (matrix @ q) / norms, 0.0)
        return 1.0 - sims
    if metric == "dot":
        return -(matrix @ q)
    if metric == "l2-squared":
        diff = matrix - q
        return np.einsum("ij,ij->i", diff, diff)
    if metric == "manhattan":
        return np.abs(matrix - q).sum(axis=1)
    return (matrix != q).sum(axis=1).astype(np.float32)


def vector_hits(coll: Collection, candidates: list[StoredObject], target: str, query: Any,
                max_distance: float | None = None) -> list[Hit]:
    want = coll.dims.get(target)
    if want is not None and want != len(query):
        raise Unprocessable(f"vector search: knn search: distance between entrypoint and query "
                            f"node: vector lengths don't match: {len(query)} vs {want}")
    metric = sch.vector_distance(coll.schema, target)
    hits = []
    fast = _matrix(coll, target) if len(candidates) > 32 else None
    if fast is not None:
        objs, matrix = fast
        allowed = None if len(candidates) == len(coll.objects) else {o.uuid for o in candidates}
        dists = _distances(metric, matrix, query).tolist() if matrix is not None else []
        for obj, dist in zip(objs, dists, strict=True):
            if (allowed is None or obj.uuid in allowed) and (
                    max_distance is None or dist <= max_distance):
                hits.append(Hit(obj, distance=dist, secondary=1 - dist))
    else:
        for obj in candidates:
            vec = obj.vectors.get(target)
            if vec is None:
                continue
            dist = distance(metric, vec, query)
            if max_distance is None or dist <= max_distance:
                hits.append(Hit(obj, distance=dist, secondary=1 - dist))
    hits.sort(key=lambda h: (h.distance, h.obj.doc_id))
    return hits


# -- BM25F -------------------------------------------------------------------------------------
def _search_props(coll: Collection, wanted: list[str]) -> list[tuple[dict[str, Any], float]]:
    out = []
    if not wanted:
        return [(p, 1.0) for p in coll.schema["properties"]
                if p["dataType"][0] in sch.TEXT_TYPES and p.get("indexSearchable")]
    for entry in wanted:
        name, _, boost = entry.partition("^")
        name = name[:1].lower() + name[1:]
        prop = sch.property_of(coll.schema, name)
        if prop is None:
            raise Unprocessable(f"property {name} not found in class {coll.name}")
        if prop["dataType"][0] not in sch.TEXT_TYPES or not prop.get("indexSearchable"):
            raise Unprocessable(f"property '{name}' is not searchable; BM25 needs a text "
                                "property with indexSearchable")
        out.append((prop, float(boost) if boost else 1.0))
    return out


def bm25(coll: Collection, candidates: list[StoredObject], query: str, properties: list[str],
         search_and: bool = False, min_match: int = 0) -> list[Hit]:
    props = _search_props(coll, properties)
    stops = stopwords(coll.schema)
    k1 = coll.schema["invertedIndexConfig"]["bm25"]["k1"]
    b = coll.schema["invertedIndexConfig"]["bm25"]["b"]
    everyone = list(coll.objects.values())
    n_docs = float(len(everyone))
    scores: dict[str, float] = {}
    explains: dict[str, list[str]] = {}
    by_tokenization: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for prop, boost in props:
        by_tokenization.setdefault(prop["tokenization"], []).append((prop, boost))
    allowed = {o.uuid for o in candidates}
    for tokenization, group in by_tokenization.items():
        terms = tokenize(tokenization, query)
        if tokenization == "word":
            terms = [t for t in terms if t not in stops]
        dup = Counter(terms)
        unique = list(dup)
        if not unique:
            continue
        freqs = {}  # prop name -> uuid -> Counter
        for prop, _ in group:
            freqs[prop["name"]] = {o.uuid: term_counts(o, prop)
                                   for o in everyone if o.properties.get(prop["name"]) is not None}
        idf: dict[str, float] = {}
        for term in unique:
            counts = [sum(1 for c in freqs[p["name"]].values() if term in c) for p, _ in group]
            nonzero = [c for c in counts if c]
            if not nonzero:
                continue
            n = sum(nonzero) // len(nonzero)
            idf[term] = math.log(1 + (n_docs - n + 0.5) / (n + 0.5)) * dup[term]
        for prop, boost in group:
            per_doc = freqs[prop["name"]]
            lengths = [sum(c.values()) for c in per_doc.values()]
            avg = (sum(lengths) / len(lengths)) if lengths else 0.0
            need = len(unique) if search_and else max(1, min_match)
            for uid, counter in per_doc.items():
                if uid not in allowed:
                    continue
                matched = [t for t in unique if counter.get(t)]
                if len(matched) < need:
                    continue
                length = sum(counter.values())
                total = 0.0
                for term in matched:
                    tf = counter[term]
                    norm = k1 * (1 - b + b * (length / avg if avg else 0.0))
                    total += idf.get(term, 0.0) * boost * tf / (tf + norm)
                    explains.setdefault(uid, []).append(
                        f"BM25F_{term}_frequency:{tf}, BM25F_{term}_propLength:{length}")
                scores[uid] = scores.get(uid, 0.0) + total
    hits = [Hit(coll.objects[uid], score=s, secondary=s,
                explain=", " + ", ".join(explains.get(uid, [])))
            for uid, s in scores.items()]
    hits.sort(key=lambda h: (-(h.score or 0.0), h.obj.doc_id))
    return hits


# -- hybrid ------------------------------------------------------------------------------------
def fuse_relative(weights: list[float], sets: list[list[Hit]], names: list[str]) -> list[Hit]:
    """FusionRelativeScore: min-max normalise each set, weight, add."""
    combined: dict[str, Hit] = {}
    for weight, hits, name in zip(weights, sets, names, strict=True):
        if not hits:
            continue
        values = [h.secondary for h in hits]
        low, high = min(values), max(values)
        for hit in hits:
            score = weight if high == low else weight * (hit.secondary - low) / (high - low)
            text = (f"Hybrid (Result Set {name}) Document {hit.obj.uuid}: original score "
                    f"{hit.secondary:g}, normalized score: {score:g}")
            prev = combined.get(hit.obj.uuid)
            if prev is not None:
                score += prev.score or 0.0
                text += " - " + prev.explain
            combined[hit.obj.uuid] = Hit(hit.obj, score=score, explain="\n" + text,
                                         secondary=hit.secondary)
    return _sorted_fused(combined)


def fuse_ranked(weights: list[float], sets: list[list[Hit]], names: list[str]) -> list[Hit]:
    """FusionRanked: reciprocal rank with k=60."""
    combined: dict[str, Hit] = {}
    for weight, hits, name in zip(weights, sets, names, strict=True):
        for rank, hit in enumerate(hits):
            score = weight / (rank + 60)
            prev = combined.get(hit.obj.uuid)
            explain = (prev.explain if prev else "") + (
                f"\nHybrid (Result Set {name}) Document {hit.obj.uuid} contributed {score:g} "
                "to the score")
            total = score + (prev.score or 0.0 if prev else 0.0)
            combined[hit.obj.uuid] = Hit(hit.obj, score=total, explain=explain,
                                         secondary=hit.secondary)
    return _sorted_fused(combined)


def _sorted_fused(combined: dict[str, Hit]) -> list[Hit]:
    return sorted(combined.values(),
                  key=lambda h: (-round(h.score or 0.0, 7), -h.secondary, h.obj.uuid))


def autocut(values: list[float], cut_off: int) -> int:
    """entities/autocut: keep results up to the n-th jump in the score curve."""
    if len(values) <= 1:
        return len(values)
    span = values[-1] - values[0]
    step = 1.0 / (len(values) - 1)
    diff = [((v - values[0]) / span if span else 0.0) - i * step for i, v in enumerate(values)]
    extrema = 0
    for i in range(1, len(diff)):
        if i == len(diff) - 1:
            if len(diff) > 2 and diff[i] > diff[i - 1] and diff[i] > diff[i - 2]:
                extrema += 1
                if extrema >= cut_off:
                    return i
        elif diff[i] > diff[i - 1] and diff[i] > diff[i + 1]:
            extrema += 1
            if extrema >= cut_off:
                return i
    return len(values)
