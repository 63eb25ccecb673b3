"""The stand-in's text2vec-openai module through the real weaviate-client, where no embedding
server is needed: what Weaviate refuses and how (a module not enabled, an OpenAI model name
on OpenAI's own URL, no key, a base URL nothing answers), the config it stores with its
defaults, and /v1/meta listing it. The embedding path itself, against a real vLLM, is in
tests/test_index_vectorizer.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import weaviate
from weaviate.classes.config import Configure, DataType, Property
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
    WeaviateBaseError,
    WeaviateInsertManyAllFailedError,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from weaviate_standin import start_standin

    handle = start_standin(0, 0, tmp_path_factory.mktemp("mod") / "backups",
                           modules=["text2vec-openai"])
    try:
        yield handle
    finally:
        handle.stop()


def client_of(handle: Any, headers: dict[str, str] | None = None) -> Any:
    return weaviate.connect_to_local(port=handle.http_port, grpc_port=handle.grpc_port,
                                     headers=headers)


def make(client: Any, name: str, **module: Any) -> Any:
    return client.collections.create(
        name, properties=[Property(name="text", data_type=DataType.TEXT)],
        vector_config=Configure.Vectors.text2vec_openai(name="default", **module))


def test_meta_config_and_refusals(standin: Any, tmp_path: Path) -> None:
    with client_of(standin) as client:
        assert "text2vec-openai" in client.get_meta()["modules"]
        url = f"http://127.0.0.1:{free_port()}"  # nothing answers there
        coll = make(client, "Docs", base_url=url, model="/models/minilm",
                    source_properties=["text"], vectorize_collection_name=False)
        module = coll.config.get().vector_config["default"].vectorizer
        assert module.model["model"] == "/models/minilm"
        assert module.model["vectorizeClassName"] is False
        with pytest.raises(UnexpectedStatusCodeError, match="wrong OpenAI model name"):
            make(client, "Bad", model="my-model")  # OpenAI's own URL: its model names only
        # no key in the request's headers nor OPENAI_APIKEY: refused before any call
        with pytest.raises(WeaviateInsertManyAllFailedError, match="no api key found"):
            coll.data.insert_many([{"text": "hello"}])
    with client_of(standin, {"X-OpenAI-Api-Key": "none"}) as client:
        coll = client.collections.get("Docs")
        with pytest.raises(WeaviateInsertManyAllFailedError,
                           match=r"send POST request.*/v1/embeddings"):
            coll.data.insert_many([{"text": "hello"}])
        with pytest.raises(WeaviateBaseError, match="send POST request"):
            coll.query.hybrid("hello", alpha=0.5)
        assert coll.query.hybrid("hello", alpha=0.0).objects == []  # BM25 needs no vector

    from weaviate_standin import start_standin

    plain = start_standin(0, 0, tmp_path / "b")
    try:
        with client_of(plain) as client:
            with pytest.raises(UnexpectedStatusCodeError, match="no module with name"):
                make(client, "Docs", base_url="http://127.0.0.1:1", model="m")
    finally:
        plain.stop()


def test_the_process_takes_the_module_from_enable_modules() -> None:
    from weaviate_standin.__main__ import ConfigError, parse, settings

    args = parse(["--http-port", "1", "--grpc-port", "2"])
    got = settings(args, {"ENABLE_MODULES": "backup-filesystem,text2vec-openai",
                          "BACKUP_FILESYSTEM_PATH": "/tmp/b", "OPENAI_APIKEY": "k"})
    assert got["modules"] == ["text2vec-openai"] and got["module_env"] == {"OPENAI_APIKEY": "k"}
    with pytest.raises(ConfigError, match="text2vec-cohere"):
        settings(args, {"ENABLE_MODULES": "text2vec-cohere"})
    with pytest.raises(ConfigError, match="not in ENABLE_MODULES"):
        settings(args, {"DEFAULT_VECTORIZER_MODULE": "text2vec-openai"})
