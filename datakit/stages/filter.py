"""filter: apply a filter profile (``filters/NAME.yaml``) to each clip's scores (SPEC §3.5).

The profile's rules are read when the pipeline spec loads and stored in the stage config,
so ``config.json`` records the exact thresholds a corpus was built with. Every clip gets
``meta["filter"] = {"profile", "passed", "failed": [rule names]}``; with ``action: reject``
(the default) a failing clip becomes a reject whose reason is the first failing rule's name
and whose detail says which score missed which threshold. ``action: tag`` keeps every clip
(``datakit curate`` runs the filter this way). Another profile is applied to the stored
scores by ``datakit build --index`` (:mod:`datakit.curation`), without scoring again.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..records import Record
from .base import Stage, StageConfig


class FilterConfig(StageConfig):
    stage: Literal["filter"] = "filter"
    profile: str = Field("offline", description="profile name (filters/NAME.yaml) or path")
    action: Literal["reject", "tag"] = Field("reject", description="reject failing clips, or only record the verdict")
    rules: list[dict] | None = Field(None, description="filled from the profile when the spec loads")
    profile_name: str | None = Field(None, description="filled from the profile when the spec loads")

    @model_validator(mode="after")
    def _load_rules(self):
        from ..scoring import profiles

        if self.rules is None:
            prof = profiles.load(self.profile)
            self.rules = [r.model_dump() for r in prof.rules]
            self.profile_name = prof.name
        else:  # validate rules given inline (or restored from a config.json)
            self.rules = [profiles.Rule.model_validate(r).model_dump() for r in self.rules]
        return self


class Filter(Stage):
    name = "filter"
    requires = ("score",)
    Config = FilterConfig

    def setup(self) -> None:
        from ..scoring.profiles import Rule

        self.rules = [Rule.model_validate(r) for r in self.config.rules]

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: FilterConfig = self.config
        if not hasattr(self, "rules"):
            self.setup()
        for r in records:
            scores = r.meta.get("scores") or {}
            fails = [(rule.name, d) for rule in self.rules if (d := rule.check(scores)) is not None]
            r.meta["filter"] = {"profile": cfg.profile_name or cfg.profile, "passed": not fails,
                                "failed": [n for n, _ in fails]}
            if fails and cfg.action == "reject":
                name, detail = fails[0]
                more = f" (also failed: {', '.join(n for n, _ in fails[1:])})" if len(fails) > 1 else ""
                r.rejected(self.name, name, f"{detail}{more} [profile {cfg.profile_name or cfg.profile}]")
        return records
