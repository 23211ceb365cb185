"""spec.problem jobs: qubo, trafficEngineering and sliceAdmission with hostile numbers,
names and topologies (inline links, GraphML, node-link JSON, ConfigMaps)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.gen_manifests import job_doc
from tests.fuzz.gen_values import Tree, hostile_value, mutated

NUMBERS = (1, 2, 3, 5, 10, 0.5, 0, -1, -0.0, 1e-9, 1e-12, 1e15, 1e16, 1e300, 2**53 + 1, 2**64,
           10**400, float("nan"), float("inf"), float("-inf"), "5", True, None)


def _number(hostile: bool, share: int = 6) -> st.SearchStrategy[Any]:
    """Small positive numbers; in a hostile document, one in `share` is a hostile one."""
    fine = st.sampled_from([1, 2, 3, 4, 5, 6, 8, 10, 12, 0.5, 2.5, 7.25])
    if not hostile:
        return fine
    return st.integers(0, share).flatmap(lambda k: st.sampled_from(NUMBERS) if k == 0 else fine)


def _names(hostile: bool, size: int = 6) -> st.SearchStrategy[str]:
    return st.sampled_from(NODE_NAMES if hostile else NODE_NAMES[:size])


NODE_NAMES = ("a", "b", "c", "d", "e", "f", "\u0131", "A", "a ", "", "x" * 300, "1", "a#1")


@st.composite
def qubo(draw: st.DrawFn, hostile: bool) -> dict[str, Any]:
    n = draw(st.integers(int(not hostile), draw(st.sampled_from([3, 8, 14, 40]))))
    names = [f"v{k}" for k in range(n)]
    forms = ["binary", "ising", "ising", "spin"] if hostile else ["binary", "ising"]
    problem: dict[str, Any] = {"form": draw(st.sampled_from(forms))}
    if draw(st.booleans()):
        odd = [[], [], ["v0"], ["\u0131"], [""]] if hostile else [[]]
        problem["variables"] = names + draw(st.sampled_from(odd))
    pool = names or ["v0"]
    problem["linear"] = {draw(st.sampled_from(pool)): draw(_number(hostile))
                         for _ in range(draw(st.integers(0, n)))}
    ghost = ["ghost"] if hostile else []
    pairs = [(draw(st.sampled_from(pool)), draw(st.sampled_from([*pool, *ghost])))
             for _ in range(draw(st.integers(0, 2 * n)))]
    problem["quadratic"] = [{"i": i, "j": j, "value": draw(_number(hostile))}
                            for i, j in pairs if hostile or i != j]
    if draw(st.integers(0, 3)) == 0:
        problem["offset"] = draw(_number(hostile, 0))
    return {"qubo": problem}


def _graphml(links: list[tuple[str, str, Any]], secret_paths: Sequence[str],
             trick: str) -> str:
    nodes = sorted({n for s, t, _ in links for n in (s, t)})
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    if trick == "xxe":
        head += (f'<!DOCTYPE graphml [<!ENTITY secret SYSTEM "file://{secret_paths[0]}">]>\n')
    elif trick == "bomb":
        head += ('<!DOCTYPE graphml [<!ENTITY a "aaaaaaaaaa">' + "".join(
            f'<!ENTITY {chr(98 + k)} "{("&" + chr(97 + k) + ";") * 10}">' for k in range(8))
            + "]>\n")
    elif trick == "doctype-lower":
        head += f'<!doctype graphml SYSTEM "{secret_paths[0]}">\n'
    body = ['<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
            '<key id="c" for="edge" attr.name="capacity" attr.type="double"/>',
            '<graph edgedefault="undirected">']
    body += [f'<node id="{n}"/>' for n in nodes]
    ref = {"xxe": "&secret;", "bomb": "&i;"}.get(trick)
    for s, t, cap in links:
        body.append(f'<edge source="{s}" target="{t}"><data key="c">{ref or cap}</data></edge>')
    if trick == "deep":
        body.append("<x>" * 5000 + "</x>" * 5000)
    body += ["</graph>", "</graphml>"]
    if trick == "unclosed":
        body = body[:-2]
    return head + "\n".join(body)


def _node_link(links: list[tuple[str, str, Any]], trick: str) -> str:
    nodes = sorted({n for s, t, _ in links for n in (s, t)})
    data: Any = {"directed": False, "multigraph": False, "graph": {},
                 "nodes": [{"id": n} for n in nodes],
                 "links": [{"source": s, "target": t, "capacity": c} for s, t, c in links]}
    if trick == "deep":
        return "[" * 100_000 + "]" * 100_000
    if trick == "list":
        data = [data]
    if trick == "nan":
        return json.dumps(data, allow_nan=True).replace("]", ', {"source": "a", "target": "b", '
                                                        '"capacity": NaN}]', 1)
    if trick == "edges":
        data["edges"] = data.pop("links")
    return json.dumps(data, allow_nan=True, default=str)


@st.composite
def topology(draw: st.DrawFn, secret_paths: Sequence[str],
             hostile: bool) -> tuple[dict[str, Any], list[Tree]]:
    """(topology spec, extra documents such as a ConfigMap)."""
    links = []
    if hostile:
        for _ in range(draw(st.integers(0, 8))):
            s, t = draw(_names(False)), draw(_names(True))
            links.append((s, t, draw(_number(True))))
    else:  # a ring of 3-6 nodes and some chords: every demand between its nodes routes
        ring = NODE_NAMES[: draw(st.integers(3, 6))]
        ends = [(ring[k], ring[(k + 1) % len(ring)]) for k in range(len(ring))]
        ends += draw(st.lists(st.tuples(st.sampled_from(ring), st.sampled_from(ring)).filter(
            lambda e: e[0] != e[1]), max_size=3))
        links = [(s, t, draw(_number(False))) for s, t in ends]
    how = draw(st.sampled_from(["links"] * 4 + ["graphml", "nodeLink", "configMap"]))
    if how == "links":
        return {"links": [{"source": s, "target": t, "capacity": c} for s, t, c in links]}, []
    tricks = ["xxe", "bomb", "doctype-lower", "deep", "unclosed", "list", "nan", "edges"]
    trick = draw(st.sampled_from(["none"] * 3 + tricks)) if hostile else "none"
    fmt = draw(st.sampled_from(["graphml", "nodeLink"])) if how == "configMap" else how
    text = _graphml(links, secret_paths, trick) if fmt == "graphml" else _node_link(links, trick)
    spec: dict[str, Any] = {"format": draw(st.sampled_from([fmt, fmt, fmt, "graphml"]))
                            if hostile else fmt}
    if draw(st.integers(0, 3)) == 0:
        spec["capacityScale"] = draw(_number(hostile, 0))
    if hostile and draw(st.integers(0, 3)) == 0:
        spec["nodeAttribute"] = draw(st.sampled_from(["label", "id", "capacity", "\u0131"]))
    if how != "configMap":
        return {**spec, "document": text}, []
    name = draw(st.sampled_from(["topo", "missing"])) if hostile else "topo"
    key = draw(st.sampled_from(["doc", "nokey"])) if hostile else "doc"
    spec["configMapRef"] = {"name": name, "key": key}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "topo"},
          "data": {"doc": text}}
    return spec, [cm]


@st.composite
def traffic(draw: st.DrawFn, secret_paths: Sequence[str],
            hostile: bool) -> tuple[dict[str, Any], list[Tree]]:
    topo, extra = draw(topology(secret_paths, hostile))
    nodes = sorted({e[k] for e in topo.get("links") or [] for k in ("source", "target")})
    if hostile or len(nodes) < 2:
        pairs = [(draw(_names(True, 7)), draw(_names(True, 7)))
                 for _ in range(draw(st.integers(0, 6)))]
    else:
        pairs = draw(st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(nodes)).filter(
            lambda p: p[0] != p[1]), min_size=1, max_size=6))
    demands = [{"source": s, "target": t, "volume": draw(_number(hostile))} for s, t in pairs]
    problem: dict[str, Any] = {"topology": topo, "demands": demands}
    if hostile and draw(st.integers(0, 3)) == 0:
        problem["candidatePaths"] = draw(st.sampled_from([1, 8, 0, 9, 10**400]))
    if hostile and draw(st.integers(0, 3)) == 0:
        problem["maxStretch"] = draw(st.sampled_from([1, 1.5, 1e300, 0.5, float("nan")]))
    if draw(st.integers(0, 4)) == 0:
        problem["aggregateToFit"] = draw(st.booleans())
    return {"trafficEngineering": problem}, extra


@st.composite
def slices(draw: st.DrawFn, hostile: bool) -> dict[str, Any]:
    names = ["pop-a", "pop-b", "a-b", "\u0131", ""] if hostile else ["pop-a", "pop-b", "a-b"]
    low = int(not hostile)
    chosen = [draw(st.sampled_from(names)) for _ in range(draw(st.integers(0, 4)))] if hostile \
        else draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    resources = [{"name": name, "capacity": draw(_number(hostile))} for name in chosen]
    pool = [r["name"] for r in resources] or ["pop-a"]
    ghost = ["ghost"] if hostile else []
    requests = [{"name": f"s{k}", "revenue": draw(_number(hostile)),
                 "demands": {draw(st.sampled_from([*pool, *ghost])): draw(_number(hostile))
                             for _ in range(draw(st.integers(low, 3)))}}
                for k in range(draw(st.integers(low, draw(st.sampled_from([4, 10, 30])))))]
    problem: dict[str, Any] = {"resources": resources, "slices": requests}
    if hostile and draw(st.integers(0, 3)) == 0:
        problem["slackBits"] = draw(st.sampled_from([1, 8, 0, 9, -1]))
    return {"sliceAdmission": problem}


@st.composite
def problem_docs(draw: st.DrawFn, secret_paths: Sequence[str]) -> list[Tree]:
    """A problem job (and any ConfigMap it reads)."""
    kind = draw(st.sampled_from(["qubo", "traffic", "slices"]))
    hostile = draw(st.booleans())
    extra: list[Tree] = []
    if kind == "qubo":
        problem = draw(qubo(hostile))
    elif kind == "traffic":
        problem, extra = draw(traffic(secret_paths, hostile))
    else:
        problem = draw(slices(hostile))
    spec: dict[str, Any] = {"problem": problem}
    if draw(st.integers(0, 2)) == 0:
        spec["execution"] = {"mode": draw(st.sampled_from(["SingleQPU", "Classical", "Auto"]))}
    if draw(st.integers(0, 3)) == 0:
        spec["shots"] = draw(st.sampled_from([1, 100, 500]))
    if draw(st.integers(0, 4)) == 0:
        spec["deadline"] = draw(st.sampled_from(["30s", "1ms", "1h"]))
    doc = job_doc("fuzz-problem", spec)
    if hostile and draw(st.integers(0, 5)) == 0:
        spec["problem"][draw(st.sampled_from(["qubo", "sliceAdmission"]))] = \
            draw(hostile_value())
    if hostile and draw(st.integers(0, 2)) == 0:
        doc, _ = draw(mutated(doc, max_mutations=1))
    return [*extra, doc]
