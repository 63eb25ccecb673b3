"""The plain script benchmarks/ingest.py measures llmops's ingest against: what an operator
would write with weaviate-client alone. Run as a process of its own, as a script is (its
Python start and its imports count, as the llmops worker's do):

    python benchmarks/ingest_plain.py CHUNKS.json EMBED_URL MODEL HTTP_PORT GRPC_PORT \
        COLLECTION BATCH

CHUNKS.json is a list of {"uuid", "properties", "text"}: the chunks llmops makes of the same
folder, made before the timing (reading and chunking 40 small files takes milliseconds).
Prints the number of objects in the collection when done.
"""

from __future__ import annotations

import json
import sys

import httpx
import weaviate


def main() -> int:
    chunks_file, url, model, http_port, grpc_port, collection, batch_size = sys.argv[1:8]
    chunks = json.loads(open(chunks_file).read())  # noqa: SIM115 - a script
    size = int(batch_size)
    with weaviate.connect_to_local(port=int(http_port), grpc_port=int(grpc_port),
                                   skip_init_checks=True) as client:
        coll = client.collections.get(collection)
        with httpx.Client(timeout=300) as http, coll.batch.fixed_size(batch_size=size) as batch:
            for start in range(0, len(chunks), size):
                group = chunks[start:start + size]
                answer = http.post(url, json={"model": model, "input": [c["text"] for c in group]})
                answer.raise_for_status()
                vectors = [d["embedding"] for d in answer.json()["data"]]
                for c, v in zip(group, vectors, strict=True):
                    batch.add_object(properties=c["properties"], uuid=c["uuid"], vector=v)
        if coll.batch.failed_objects:
            print(f"{len(coll.batch.failed_objects)} objects failed", file=sys.stderr)
            return 1
        print(len(coll))
    return 0


if __name__ == "__main__":
    sys.exit(main())
