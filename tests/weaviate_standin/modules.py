"""Vectorizer modules, as Weaviate 1.32 runs them: `text2vec-openai` (modules/text2vec-openai:
ent/class_settings.go, clients/openai.go, usecases/modulecomponents' object texts). Enabled by
ENABLE_MODULES; a collection whose vector names it gets its objects and queries vectorised by
a POST to `<baseURL>/v1/embeddings` from this process, as Weaviate calls it from its host,
with the key from the request's `X-Openai-Api-Key` header or the OPENAI_APIKEY variable.

The request's headers (REST) or metadata (gRPC) reach the store through `REQUEST_HEADERS`
(a context variable set per request), as Weaviate carries them in the request's context."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from .errors import Unprocessable

REQUEST_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar("standin_headers",
                                                                   default=None)
"""The current request's headers, lower-cased names."""

OPENAI = "text2vec-openai"
KNOWN = {OPENAI: {"documentationHref":
                  "https://platform.openai.com/docs/guides/embeddings/what-are-embeddings",
                  "name": "OpenAI Module"}}
DEFAULT_BASE_URL = "https://api.openai.com"
DEFAULT_MODEL = "text-embedding-3-small"
OPENAI_MODELS = ("ada", "babbage", "curie", "davinci", "text-embedding-3-small",
                 "text-embedding-3-large")
V3_DIMENSIONS = {"text-embedding-3-small": (512, 1536), "text-embedding-3-large": (256, 1024,
                                                                                    3072)}
TIMEOUT_S = 50.0  # Weaviate's MODULES_CLIENT_TIMEOUT default
BATCH = 100
"""Texts per embeddings request (Weaviate batches by tokens; the stand-in by count)."""


class Modules:
    """The modules ENABLE_MODULES names (other than backup-filesystem), and their env."""

    def __init__(self, enabled: list[str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        unknown = [m for m in enabled or [] if m not in KNOWN]
        if unknown:
            raise ValueError(f"modules not available in the stand-in: {', '.join(unknown)}")
        self.enabled = frozenset(enabled or [])
        self.env = dict(env or {})

    def meta(self) -> dict[str, Any]:
        return {name: dict(KNOWN[name]) for name in sorted(self.enabled)}

    def fill(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        """A vectorizer's stored config: ClassConfigDefaults filled in, then Validate."""
        out = {"baseURL": DEFAULT_BASE_URL, "model": DEFAULT_MODEL, "vectorizeClassName": True,
               **config}
        if out.get("type", "text") not in ("text", "code"):
            raise Unprocessable("wrong OpenAI type name, available model names are: "
                                "[text code]")
        third_party = not ("api.openai.com" in str(out["baseURL"]) or out.get("isAzure"))
        if not third_party:
            if out["model"] not in OPENAI_MODELS:
                raise Unprocessable("wrong OpenAI model name, available model names are: "
                                    f"[{' '.join(OPENAI_MODELS)}]")
            dims = out.get("dimensions")
            if dims is not None and dims not in V3_DIMENSIONS.get(out["model"], ()):
                raise Unprocessable(f"wrong dimensions setting for {out['model']} model")
        return out

    # -- vectorising ---------------------------------------------------------------------
    def object_text(self, class_name: str, config: dict[str, Any],
                    props: dict[str, Any], schema_props: list[dict[str, Any]]) -> str:
        """The text Weaviate embeds for an object: the class name (vectorizeClassName), then
        each text property in name order (only `properties` when the config lists them)."""
        wanted = config.get("properties")
        kinds = {p["name"]: p["dataType"][0] for p in schema_props}
        parts = [_lower_words(class_name)] if config.get("vectorizeClassName", True) else []
        for name in sorted(props):
            if wanted is not None and name not in wanted:
                continue
            if kinds.get(name) not in ("text", "text[]"):
                continue
            value = props[name]
            parts.extend(value if isinstance(value, list) else [str(value)])
        return " ".join(p for p in parts if p)

    def embed(self, config: dict[str, Any], texts: list[str]) -> list[list[float]]:
        """clients/openai.go vectorize: POST <baseURL>/v1/embeddings, Bearer key."""
        headers = REQUEST_HEADERS.get() or {}
        key = headers.get("x-openai-api-key") or self.env.get("OPENAI_APIKEY")
        if not key:
            raise Unprocessable("API Key: no api key found neither in request header: "
                                "X-Openai-Api-Key nor in environment variable under "
                                "OPENAI_APIKEY")
        base = str(headers.get("x-openai-baseurl") or config["baseURL"])
        url = base.rstrip("/") + "/v1/embeddings"
        found: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            found += self._post(url, key, config, texts[start:start + BATCH])
        return found

    def _post(self, url: str, key: str, config: dict[str, Any],
              texts: list[str]) -> list[list[float]]:
        body: dict[str, Any] = {"input": texts, "model": config["model"]}
        if config.get("dimensions") is not None:
            body["dimensions"] = config["dimensions"]
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {key}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        except (urllib.error.URLError, OSError) as err:
            raise Unprocessable(f"send POST request: Post \"{url}\": {err}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise Unprocessable(f"unmarshal response body. Got: {raw[:300]!r}") from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if status != 200 or error:
            message = error.get("message") if isinstance(error, dict) else answer
            raise Unprocessable(f"connection to: OpenAI API failed with status: {status} "
                                f"error: {message}")
        rows = sorted(answer.get("data") or [], key=lambda r: int(r.get("index", 0)))
        if len(rows) != len(texts):
            raise Unprocessable(f"OpenAI API: {len(rows)} embeddings for {len(texts)} inputs")
        return [[float(x) for x in row["embedding"]] for row in rows]


def module_of(cls: dict[str, Any], target: str) -> tuple[str, dict[str, Any]] | None:
    """(module, config) vectorising the class's vector `target` ("" = class level)."""
    if target == "":
        name = str(cls.get("vectorizer") or "none")
        config = (cls.get("moduleConfig") or {}).get(name) or {}
    else:
        vectorizer = cls.get("vectorConfig", {}).get(target, {}).get("vectorizer") or {}
        name, config = next(iter(vectorizer.items()), ("none", {}))
    return (name, dict(config)) if name != "none" else None


def _lower_words(name: str) -> str:
    """camelCaseToLower: `ChunkDocs` -> `chunk docs`."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
