"""Query families: the registry and its helpers (base.py) and the families that fill it (dml.py, single.py,
joined.py, nested.py; each registers itself with `@family` when imported here).

    from pipeline.datagen.families import FAMILIES, TIERS, Ctx, Skip
    fam = FAMILIES["list_where"]; built = fam.build(Ctx(schema, rng, "question"))
    built.query, built.text          # a query.Query / Dml and the question (values still marked)
"""
from __future__ import annotations

from pipeline.datagen.families import dml, joined, nested, single  # noqa: F401  (registers the families)
from pipeline.datagen.families.base import FAMILIES, TIER_GROUPS, TIERS, WORDED, Ctx, Family, Skip

__all__ = ["FAMILIES", "TIER_GROUPS", "TIERS", "WORDED", "Ctx", "Family", "Skip"]
