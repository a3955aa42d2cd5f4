"""A catalogue read against a jurisdiction profile: what it declares that the profile's rules do not allow
(`sharehub catalogue validate` warns of each; the hub enforces the profile's rule regardless)."""

from __future__ import annotations

from sharehub.catalogue.loader import Catalogue
from sharehub.profiles import Profile


def catalogue_against_profile(profile: Profile, catalogue: Catalogue) -> list[str]:
    """What the catalogue declares that the profile does not allow, one sentence per resource and field:
    a delivery deadline beyond its limit (enforced anyway: `sharehub.notices.delivery_days`), a store it
    wants in real time delivered otherwise, an open type it lacks, a basis it publishes left out."""
    flow = profile.workflow
    problems = []
    for r in sorted(catalogue.resources.values(), key=lambda r: r.id):
        declared = r.update.deadline_working_days
        if flow.delivery_max_working_days is not None and declared > flow.delivery_max_working_days:
            problems.append(
                f"{r.id}: update.deadline_working_days is {declared}, but {profile.id} allows at most "
                f"{flow.delivery_max_working_days} ({flow.delivery_basis}); {flow.delivery_max_working_days} applies"
            )
        if r.open not in flow.open_types:
            problems.append(
                f"{r.id}: open is {r.open}, which {profile.id} does not have ({flow.open_types_basis}); "
                f"declare one of {', '.join(flow.open_types)}"
            )
        if flow.open_basis_published and r.open != "unconditional" and not r.open_basis:
            problems.append(
                f"{r.id}: open is {r.open} with no open_basis, but {profile.id} publishes the basis for not "
                f"opening data or opening it on application only ({flow.open_basis_published})"
            )
        if r.store.base in flow.realtime_stores and r.update.frequency != "realtime":
            problems.append(
                f"{r.id}: update.frequency is {r.update.frequency}, but {profile.id} wants the {r.store.base} "
                f"store delivered in real time ({flow.delivery_basis})"
            )
    return problems
