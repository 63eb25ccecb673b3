"""The adapter kind's pure plan: (desired, current, observed) -> steps.

Store first (a content-addressed copy on the server's host, verified), then merge where asked,
then load: not loaded -> load; loaded with another sha -> reload in place and reset the prefix
cache (no request may reuse prefixes computed with the old weights); loaded with this sha ->
nothing. Removal unloads; the store copy and merged folders are never deleted. Tested from
data files (`tests/cases/adapter/*.toml`)."""

from __future__ import annotations

from llmops.ops.kinds.adapter.observed import AdapterObserved, AdapterStep
from llmops.ops.kinds.adapter.spec import AdapterSpec
from llmops.ops.kinds.base import Step


def plan_adapter(
    desired: AdapterSpec | None, current: AdapterSpec | None, observed: AdapterObserved
) -> list[Step]:
    """Steps from what the host and server hold (observed) to what is desired; None = remove."""
    spec = desired or current
    if spec is None:
        return []
    if desired is None:
        return _removal(spec, observed)
    steps: list[Step] = []
    if current is not None and current.server and current.server != desired.server:
        steps.append(_unload(current, f"it moves to {desired.server or 'no server'}"))
    sha = desired.sha256
    if not observed.stored(sha):
        steps.append(_fetch(desired, observed))
    if desired.merge_to and not observed.merged:
        steps.append(
            Step(
                "merge",
                f"merge {desired.short_sha()} into {observed.base} as {desired.merge_to}",
                (),
                AdapterStep(
                    host=observed.host,
                    store_path=observed.store_path,
                    sha=sha,
                    out=desired.merge_to,
                    base=observed.base,
                ),
            )
        )
    if desired.server is None:
        return steps
    at = AdapterStep(
        host=observed.host, store_path=observed.store_path, sha=sha, server=desired.server
    )
    if desired.name not in observed.loaded:
        why = "not loaded"
        if observed.state.get("sha") == sha:
            why = "not loaded: the server restarted since"
        steps.append(
            Step("load", f"load {desired.name} ({desired.short_sha()}) into "
                 f"{desired.server} ({why})", (), at)
        )
    elif observed.loaded[desired.name] != sha:
        loaded = observed.loaded[desired.name]
        was = loaded[:12] if loaded else "a folder outside the store"
        steps += [
            Step("reload", f"reload {desired.name} in place: {was} -> {desired.short_sha()}",
                 (), at),
            Step(
                "reset-prefix-cache",
                f"reset the prefix cache of {desired.server} (prefixes of {was})",
                (),
                at,
            ),
        ]
    return steps


def _fetch(spec: AdapterSpec, observed: AdapterObserved) -> Step:
    where = (
        f"{observed.source_path} on {observed.source_host}"
        if observed.source_path
        else f"run {spec.run}" if spec.run else f"{spec.path}"
    )
    return Step(
        "fetch",
        f"copy {spec.short_sha()} from {where} into the store on {observed.host}",
        (),
        AdapterStep(
            host=observed.host,
            source_host=observed.source_host,
            source_path=observed.source_path,
            store_path=observed.store_path,
            sha=spec.sha256,
        ),
    )


def _unload(spec: AdapterSpec, why: str) -> Step:
    return Step(
        "unload",
        f"unload {spec.name} from {spec.server} ({why})",
        (),
        AdapterStep(server=spec.server, sha=spec.sha256),
    )


def _removal(spec: AdapterSpec, observed: AdapterObserved) -> list[Step]:
    """Unload it if the server serves it (which drops its record), else drop the record; the
    store copy and merged folders stay."""
    steps: list[Step] = []
    if spec.server and spec.name in observed.loaded:
        steps.append(_unload(spec, "adapter removed"))
    elif observed.state:
        steps.append(
            Step(
                "forget",
                f"remove the record of {spec.name} on {observed.host} (the store copy stays)",
                (),
                AdapterStep(host=observed.host),
            )
        )
    return steps
