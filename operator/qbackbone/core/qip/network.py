"""Live network state as an input to the QIP (issue 20, item 4): a job whose links run hot
is urgent, and is decided as if less of its deadline were left.

A network controller keeps a JSON document current (in a ConfigMap the policy names):

    {"observedAt": "2026-12-08T10:00:00Z", "links": {"Chicago--Kansas City": 0.95, ...}}

and marks the jobs it submits with the links they serve (annotation ``qbackbone.io/links``,
comma-separated). Utilisation is a share of capacity (above 1: over capacity). A job naming
a link at or above ``urgentUtilisation`` gets ``deadlineFactor`` of its remaining deadline
for the QIP's deadline rules (a faster path wins, a slow one loses); it fails only at its
real deadline. Every outcome is a rule (``networkUrgent``) that says where the state came
from and how old it was; state that is missing, stale or malformed is ignored, with a rule
saying why, and never fails a job. Link names match either way round and ignore case.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from qbackbone.api.policy import NetworkState
from qbackbone.api.quantumjob import RuleOutcome

LINKS_ANNOTATION = "qbackbone.io/links"
MAX_DOCUMENT = 1_000_000  # characters of the state document (a ConfigMap holds at most 1 MiB)
MAX_LINKS = 50_000  # in the state document
MAX_JOB_LINKS = 1_000  # named by one job
RULE = "networkUrgent"


@dataclass(frozen=True)
class Urgency:
    """What the network state means for one job's decision."""

    factor: float = 1.0  # of the remaining deadline the QIP sees
    rules: list[RuleOutcome] = field(default_factory=list)


def _key(link: str) -> frozenset[str]:
    ends = [e.strip().casefold() for e in link.split("--")]
    return frozenset(ends)


def _parse(text: str) -> tuple[datetime, dict[frozenset[str], tuple[str, float]]]:
    """ValueError naming what is wrong with the document."""
    if len(text) > MAX_DOCUMENT:  # qbackbone run reads a manifest's ConfigMap unchecked
        raise ValueError(f"{len(text)} characters, at most {MAX_DOCUMENT}")
    raw = json.loads(text)
    if not isinstance(raw, dict) or not isinstance(raw.get("links"), dict):
        raise ValueError('expected {"observedAt": ..., "links": {"a--b": utilisation}}')
    observed = datetime.fromisoformat(str(raw.get("observedAt")).replace("Z", "+00:00"))
    if observed.tzinfo is None:
        raise ValueError("observedAt needs a time zone")
    links = raw["links"]
    if len(links) > MAX_LINKS:
        raise ValueError(f"{len(links)} links, at most {MAX_LINKS}")
    out = {}
    for name, value in links.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value) or value < 0 or "--" not in str(name):
            raise ValueError(f"link {str(name)[:80]!r}: expected 'a--b' and a utilisation >= 0")
        out[_key(str(name))] = (str(name), float(value))
    return observed, out


def network_urgency(state: NetworkState | None, annotations: Mapping[str, str],
                    now: datetime) -> Urgency:
    """The urgency of a job (its annotations) under the policy's network state."""
    named = annotations.get(LINKS_ANNOTATION)
    if state is None or not named:
        return Urgency()
    source = ("ConfigMap " + f"{state.config_map_ref.name}/{state.config_map_ref.key}"
              if state.config_map_ref is not None else "the policy's document")
    wanted = [n.strip() for n in named.split(",") if n.strip()][:MAX_JOB_LINKS]
    if state.document is None:
        return _ignored(f"{source} could not be read here", len(wanted))
    try:
        observed, links = _parse(state.document)
    except (ValueError, TypeError) as err:
        return _ignored(f"{source} is malformed: {str(err)[:200]}", len(wanted))
    age = (now - observed).total_seconds()
    if age > state.max_age_seconds:
        return _ignored(f"{source} observed {age:.0f}s before the decision, older than "
                        f"maxAgeSeconds {state.max_age_seconds:g}", len(wanted))
    known = [links[_key(n)] for n in wanted if _key(n) in links]
    if not known:
        return _ignored(f"none of the job's {len(wanted)} link(s) is in {source}", len(wanted))
    name, hottest = max(known, key=lambda item: item[1])
    urgent = hottest >= state.urgent_utilisation
    why = (f"{name} at {hottest:.2f} (of {len(known)} known link(s); {source}, observed "
           f"{max(age, 0.0):.0f}s before the decision)"
           + (f": the QIP sees {state.deadline_factor:g} of the deadline left" if urgent
              else ""))
    rule = RuleOutcome(name=RULE, value=why, threshold=state.urgent_utilisation,
                       passed=not urgent)
    return Urgency(state.deadline_factor if urgent else 1.0, [rule])


def _ignored(why: str, links: int) -> Urgency:
    return Urgency(1.0, [RuleOutcome(name=RULE, value=f"ignored: {why}",
                                     threshold=f"{links} link(s) named", passed=True)])
