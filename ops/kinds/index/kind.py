"""The index kind: one Weaviate collection kept by llmops, on an instance it attaches to (over
SSH forwards of the HTTP and gRPC ports) or runs as a detached process (binary or docker).

One concept per module: `spec` (what is asked), `plan` (pure: spec + observed -> steps),
`apply` (thin: observe, preflight, steps), `launch` (the instance's argv and env),
`weaviate_conn` (forwards, key by name, readiness, version), `schema` (the collection),
`chunking` (pure: documents -> chunks with content ids), `embed` (vectors from an llmops
server), `ingest`, `query` (hybrid), `records` (the record on the host: data key, snapshots,
backups), `checks` (the checklist), `summary` (state word and row), `logs` (Weaviate's
and the ingest worker's). Backups are the rollback of data: see DESIGN.md "Indexes as
built".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llmops.ops.kinds.base import (
    Check,
    Context,
    Kind,
    LaunchCommand,
    Progress,
    Ref,
    Sample,
    Spec,
    SpecError,
    Step,
)
from llmops.ops.kinds.index import apply as index_apply
from llmops.ops.kinds.index import checks as index_checks
from llmops.ops.kinds.index import summary as index_summary
from llmops.ops.kinds.index.launch import weaviate_argv, weaviate_env
from llmops.ops.kinds.index.logs import index_logs
from llmops.ops.kinds.index.observed import IndexObserved
from llmops.ops.kinds.index.plan import plan_index
from llmops.ops.kinds.index.progress import ProgressReader
from llmops.ops.kinds.index.spec import IndexSpec
from llmops.ops.kinds.index.vectorizer import base_url
from llmops.ops.kinds.server.flags import serves_embeddings
from llmops.ops.kinds.server.spec import ServerSpec

if TYPE_CHECKING:
    from llmops.ops.hostpool import HostPool


class IndexKind(Kind[IndexSpec, IndexObserved]):
    """Weaviate collections: created, ingested by content hash, backed up before anything
    destructive, restored from the backup the earlier state is in on rollback."""

    name: ClassVar[str] = "index"
    folder: ClassVar[str] = "indexes"
    Spec: ClassVar[type[Spec]] = IndexSpec
    order: ClassVar[int] = 90

    def __init__(self) -> None:
        self._seen = index_summary.Seen()
        self._progress = ProgressReader()

    # -- admission -------------------------------------------------------------------
    def depends_on(self, spec: IndexSpec) -> dict[str, Ref]:
        found: dict[str, Ref] = {"host": ("host", spec.host)}
        if spec.embed_server:
            found["embed_server"] = ("server", spec.embed_server)
        if spec.rerank_server:
            found["rerank_server"] = ("server", spec.rerank_server)
        return found

    def owns_process(self, spec: IndexSpec, proc_name: str) -> bool:
        return spec.launch != "attach" and proc_name == spec.proc_name()

    def admit(self, spec: IndexSpec, context: Context) -> None:
        """The embedding server serves embeddings; ports llmops would listen on are free."""
        server = context.spec("server", spec.embed_server) if spec.embed_server else None
        if isinstance(server, ServerSpec) and not serves_embeddings(server.args):
            raise SpecError(
                "embed_server",
                f"server {server.name} does not serve /v1/embeddings (it generates text)",
                "serve an embedding model with args runner = pooling "
                f"(llmops server up {server.name} --arg runner=pooling ...)",
            )
        if spec.vectorizer and isinstance(server, ServerSpec):
            where = context.spec("host", server.host)
            base_url(spec, server, getattr(where, "address", None))  # Weaviate reaches it
        reranks = context.spec("server", spec.rerank_server) if spec.rerank_server else None
        if isinstance(reranks, ServerSpec) and not serves_embeddings(reranks.args):
            raise SpecError(
                "rerank_server",
                f"server {reranks.name} does not serve /v1/rerank (it generates text)",
                "serve a cross-encoder or an embedding model with args runner = pooling "
                f"(llmops server up {reranks.name} --arg runner=pooling ...)",
            )
        ports = {spec.http_port, spec.grpc_port}
        for (_kind, other_name), other in context.desired.items():
            if getattr(other, "host", None) != spec.host or other_name == spec.name:
                continue
            if isinstance(other, ServerSpec) and ports & other.ports():
                port = sorted(ports & other.ports())[0]
                raise SpecError("http_port" if port == spec.http_port else "grpc_port",
                                f"port {port} is used by server {other_name}",
                                "pick another port")
            if (isinstance(other, IndexSpec) and "attach" not in (spec.launch, other.launch)
                    and ports & {other.http_port, other.grpc_port}):
                raise SpecError("http_port", f"index {other_name} runs its own Weaviate on "
                                "these ports", "pick other ports, or attach to that one")

    def preflight(self, spec: IndexSpec, hosts: HostPool) -> None:
        index_apply.preflight(spec, hosts)

    # -- observe / plan / apply --------------------------------------------------------
    def observe(self, spec: IndexSpec, hosts: HostPool) -> IndexObserved:
        return index_apply.observe(spec, hosts)

    def plan(self, desired: IndexSpec | None, current: IndexSpec | None,
             observed: IndexObserved) -> list[Step]:
        return plan_index(desired, current, observed)

    def apply(self, step: Step, spec: IndexSpec | None, hosts: HostPool,
              progress: Progress) -> dict[str, Any]:
        assert spec is not None
        return index_apply.apply(step, spec, hosts, progress)

    def validate(self, spec: IndexSpec, hosts: HostPool) -> list[Check]:
        return index_checks.checklist(spec, hosts)

    def validate_absent(self, spec: IndexSpec, hosts: HostPool) -> list[Check]:
        return index_checks.checklist_absent(spec, hosts)

    def commands(self, spec: IndexSpec, hosts: HostPool) -> list[LaunchCommand]:
        """launch = binary / docker: the command llmops starts Weaviate with (the key's
        value is not shown: its variable is filled at start from where the spec names it)."""
        if spec.launch == "attach":
            return []
        return [LaunchCommand(spec.proc_name(), weaviate_argv(spec), weaviate_env(spec))]

    # -- logs (HasLogs): Weaviate's (binary, docker) and the ingest worker's --------------
    def logs(self, spec: IndexSpec, hosts: HostPool, lines: int = 100) -> list[str]:
        return index_logs(spec, hosts, lines)

    # -- progress (HasProgress): the recall history and the ingest worker's counts ----
    def progress_points(self, spec: IndexSpec, hosts: HostPool) -> list[dict[str, Any]]:
        return self._progress.points(spec, hosts)

    def evals_changed(self, name: str) -> None:
        self._progress.forget(name)

    # -- summary (Summarizes) ----------------------------------------------------------
    def status(self, spec: IndexSpec, hosts: HostPool, answering: bool | None = None) -> str:
        return index_summary.status(spec, hosts, self._seen)

    def summary(self, spec: IndexSpec, status: str, latest: Sample | None) -> dict[str, Any]:
        return index_summary.summary(spec, status, latest, self._seen.get(spec))
