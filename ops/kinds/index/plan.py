"""The index kind's pure plan: (desired, current, observed) -> steps.

Data that does not fit in git is referenced by backup: before anything that would lose the
collection's objects (drop, re-create, a property, distance or chunking change, another
embedding model or source) the plan backs it up, unless a backup of exactly what it holds
exists (`llmops index create` takes one before the commit and names it in the spec). Going
back to a spec whose objects a backup holds restores that backup instead of re-embedding.
Then ingest when the source folder differs from what was ingested. Backups are never deleted.
Tested from data files (`tests/cases/index/*.toml`)."""

from __future__ import annotations

from llmops.ops.kinds.base import Step
from llmops.ops.kinds.index.docker import container
from llmops.ops.kinds.index.docker import stop_argv as docker_stop_argv
from llmops.ops.kinds.index.launch import launch_hash, weaviate_argv, weaviate_env
from llmops.ops.kinds.index.observed import IndexObserved, IndexStep
from llmops.ops.kinds.index.spec import IndexSpec


def backup_id_for(name: str, data_key: str | None, now: float) -> str:
    """A new backup's id: the index, what the objects are made as, and when (unique)."""
    return f"{name}-{(data_key or 'unknown')[:8]}-{int(now)}"


def plan_index(
    desired: IndexSpec | None, current: IndexSpec | None, observed: IndexObserved
) -> list[Step]:
    """Steps from what the instance holds (observed) to what is desired; None = remove."""
    spec = desired or current
    if spec is None:
        return []
    if desired is None:
        return _removal(spec, observed)
    steps = _instance(desired, current, observed)
    key = desired.data_key(observed.embed_model)
    same = observed.exists and observed.collection == desired.collection \
        and observed.data_key == key
    fp = observed.source_fp if same else None
    if observed.exists and not same:
        why = _why_destructive(desired, observed, key)
        steps += _backup(desired.name, observed, why)
        steps.append(_drop(observed, why))
    if not same:
        restorable = observed.restorable(desired.collection, key)
        if restorable is not None:
            fp = observed.backups[restorable].source_fp
            steps.append(Step(
                "restore",
                f"restore {desired.collection} from backup {restorable} (its objects are made "
                "as this spec says)",
                (),
                IndexStep(collection=desired.collection, backup_id=restorable, data_key=key,
                          source_fp=fp),
            ))
        else:
            steps.append(Step(
                "create",
                f"create collection {desired.collection} ({desired.distance}"
                + (f", {len(desired.properties)} extra properties" if desired.properties else "")
                + ")",
                (),
                IndexStep(collection=desired.collection, data_key=key),
            ))
    elif desired.ef is not None and observed.ef != desired.ef:
        steps.append(Step(
            "update-config",
            f"set HNSW ef of {desired.collection}: {observed.ef} -> {desired.ef}",
            (),
            IndexStep(collection=desired.collection, extra={"ef": desired.ef}),
        ))
    if desired.source and (observed.source_now is None or observed.source_now != fp):
        why = "new documents" if fp is None else "documents changed since the last ingest"
        if observed.source_now is None:
            why = "source not fingerprinted"
        steps.append(Step(
            "ingest",
            f"ingest {desired.source} into {desired.collection} ({why})",
            (),
            IndexStep(collection=desired.collection, data_key=key,
                      source_fp=observed.source_now),
        ))
    return steps


def _why_destructive(desired: IndexSpec, observed: IndexObserved, key: str) -> str:
    if observed.collection != desired.collection:
        return f"the collection moves from {observed.collection} to {desired.collection}"
    if observed.data_key is None:
        return "its objects were made by an unknown spec"
    return "properties, distance, chunking, embedding model or source changed"


def _backup(name: str, observed: IndexObserved, why: str) -> list[Step]:
    """A backup of what the live collection holds, unless one exists already."""
    if observed.backed_up() is not None:
        return []
    backup_id = backup_id_for(name, observed.data_key, observed.now)
    return [Step(
        "backup",
        f"back up {observed.collection} as {backup_id} before the change ({why})",
        (),
        IndexStep(collection=observed.collection, backup_id=backup_id,
                  data_key=observed.data_key, source_fp=observed.source_fp),
    )]


def _drop(observed: IndexObserved, why: str) -> Step:
    held = observed.backed_up()
    kept = f"backup {held}" if held else "the backup above"
    return Step(
        "drop",
        f"drop collection {observed.collection} ({why}; {kept} keeps its objects)",
        (),
        IndexStep(collection=observed.collection),
    )


def _instance(desired: IndexSpec, current: IndexSpec | None, observed: IndexObserved
              ) -> list[Step]:
    """launch = binary / docker: start llmops's Weaviate (restart it when its command
    changed) and wait until it is ready; attach: stop one llmops ran before."""
    proc = desired.proc_name()
    if desired.launch == "attach":
        if current is not None and current.launch != "attach" and observed.proc_running:
            return [_stop(current, "attached instead")]
        return []
    want = launch_hash(desired)
    steps: list[Step] = []
    if observed.proc_running and observed.proc_hash == want:
        return steps
    if observed.proc_running:
        steps.append(_stop(current if current is not None and current.launch != "attach"
                           else desired, "its command changed"))
    steps.append(Step(
        "start",
        f"start Weaviate as {proc} on ports {desired.http_port}/{desired.grpc_port}",
        tuple(weaviate_argv(desired)),
        IndexStep(proc=proc, env=weaviate_env(desired), hash=want),
    ))
    steps.append(Step("wait-ready", f"wait for /v1/.well-known/ready of {proc}", (),
                      IndexStep(proc=proc)))
    return steps


def _removal(spec: IndexSpec, observed: IndexObserved) -> list[Step]:
    """Back up and drop the collection (its backups stay, so a rollback restores it); stop
    the instance llmops ran."""
    steps: list[Step] = []
    if observed.exists:
        steps += _backup(spec.name, observed, "index removed")
        steps.append(_drop(observed, "index removed"))
    if spec.launch != "attach" and observed.proc_running:
        steps.append(_stop(spec, "index removed"))
    return steps


def _stop(spec: IndexSpec, why: str) -> Step:
    """Stop llmops's Weaviate: its process, or for docker its container through docker
    (a container outlives its `docker run`: the argv is `docker stop`)."""
    argv = tuple(docker_stop_argv(spec)) if spec.launch == "docker" else ()
    what = f"container {container(spec)}" if spec.launch == "docker" else spec.proc_name()
    return Step("stop", f"stop {what} ({why})", argv, IndexStep(proc=spec.proc_name()))
