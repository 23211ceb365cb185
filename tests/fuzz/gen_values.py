"""Hostile values, tree mutations and YAML rendering shared by the manifest generators.

A document is built as a Python tree, mutated at random paths (wrong types, lists where
mappings belong, NaN and Infinity, huge and negative numbers, 400-digit integers, look-alike
characters, snake_case and unknown field names, deep nesting), rendered to YAML text, and
sometimes damaged as bytes (not UTF-8, NUL bytes, truncated). Constructs a Python tree
cannot express (deep flow nesting, alias bombs, recursive anchors, 5000-digit integers,
YAML tags) are written as placeholders and spliced into the text.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import yaml
from hypothesis import strategies as st

Tree = Any
Path = tuple[str, ...]


def alias_bomb(levels: int) -> str:
    """A few hundred bytes of YAML that are 4^levels scalars once aliases are followed."""
    items = ["&a0 [x, x, x, x]"]
    items += [f"&a{k} [*a{k - 1}, *a{k - 1}, *a{k - 1}, *a{k - 1}]" for k in range(1, levels)]
    return "[" + ", ".join(items) + "]"


RAW_YAML = {
    "@@DEEP_LIST@@": "[" * 3000 + "]" * 3000,
    "@@DEEP_MAP@@": "{a: " * 2000 + "1" + "}" * 2000,
    "@@MEDIUM_NEST@@": "[" * 90 + "1" + "]" * 90,
    "@@ALIAS_BOMB@@": alias_bomb(12),  # 4^12 scalars: harmless unless something expands it
    "@@RECURSIVE@@": "&r [*r]",
    "@@BIGINT_5000@@": "9" * 5000,
    "@@BIGFLOAT@@": "1" * 400 + ".5e400",
    "@@PYTHON_TAG@@": "!!python/object/apply:os.system ['true']",
    "@@BINARY@@": "!!binary aGVsbG8=",
    "@@SET@@": "!!set {a, b}",
    "@@SEXAGESIMAL@@": "1:30:00",
    "@@OCTAL@@": "0o17",
    "@@MERGE@@": "{<<: {name: merged}}",
    "@@TIMESTAMP@@": "2026-13-45T99:99:99Z",
}

WEIRD_TEXT = ("", " ", "NaN", "Infinity", "-Infinity", "1e999", "\uff11\uff12", "\u0131",
              "\u0130", "\u202eevil", "a" * 5000, "10s", "-10s", "PT-1S", "1h" * 60, "0x10",
              "\x00", "\ud7ff", "j\u00f6b", "../../etc/passwd", "${HOME}", "{{ .Values }}",
              "true", "null", "~", "yes", "9" * 400, "-0", "1_000", "\u0661\u0662")


def hostile_scalar() -> st.SearchStrategy[Any]:
    """A value of the wrong type, range or spelling."""
    return st.one_of(
        st.sampled_from([None, True, False, 0, -1, 1, -(2**63), 2**63, 2**64, 2**64 + 1,
                         10**400, -(10**400), math.nan, math.inf, -math.inf, 1e308, 5e-324,
                         -0.0, 0.5, 1e-12, 2.5]),
        st.sampled_from(WEIRD_TEXT),
        st.sampled_from(sorted(RAW_YAML)),
        st.integers(), st.floats(), st.text(max_size=40),
    )


def hostile_value() -> st.SearchStrategy[Any]:
    """A scalar, or a small list or mapping of them (lists where mappings belong...)."""
    return st.recursive(
        hostile_scalar(),
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(st.one_of(st.text(max_size=10),
                                                          st.sampled_from(WEIRD_TEXT[:8])),
                                                inner, max_size=4)),
        max_leaves=8,
    )


SNAKE = {"apiVersion": "api_version", "policyRef": "policy_ref", "qpuSelector": "qpu_selector",
         "matchLabels": "match_labels", "creationTimestamp": "creation_timestamp",
         "shotTime": "shot_time", "setupTime": "setup_time", "maxDepth": "max_depth",
         "noiseFrom": "noise_from", "minQubits": "min_qubits", "maxQubits": "max_qubits",
         "trafficEngineering": "traffic_engineering", "sliceAdmission": "slice_admission",
         "candidatePaths": "candidate_paths", "slackBits": "slack_bits"}
LOOKALIKE_KEYS = ("k\u0131nd", "sp\u0435c", "\uff53\uff50\uff45\uff43", "Spec", "SPEC", "spec ",
                  "met\u0430data", "qasm\u200b", "colour", "__proto__", "$ref", "", "spec2")


def paths_of(tree: Tree, prefix: Path = ()) -> list[Path]:
    """Every key path of a tree of dicts (lists are leaves)."""
    found: list[Path] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if isinstance(key, str):
                found.append((*prefix, key))
                found.extend(paths_of(value, (*prefix, key)))
    return found


def _parent(tree: Tree, path: Path) -> dict[Any, Any] | None:
    node = tree
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


@st.composite
def mutated(draw: st.DrawFn, base: Tree, max_mutations: int = 3) -> tuple[Tree, list[str]]:
    """The tree with 0..max_mutations changes, and a note of each change."""
    tree = copy.deepcopy(base)
    notes: list[str] = []
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = paths_of(tree)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(tree, path)
        if parent is None or path[-1] not in parent:
            continue
        how = draw(st.sampled_from(["value", "value", "value", "rename", "unknown", "delete",
                                    "wrap"]))
        key = path[-1]
        if how == "value":
            parent[key] = draw(hostile_value())
        elif how == "rename":
            new = SNAKE.get(key) or draw(st.sampled_from(LOOKALIKE_KEYS))
            parent[new] = parent.pop(key)
        elif how == "unknown":
            parent[draw(st.sampled_from(LOOKALIKE_KEYS))] = draw(hostile_value())
        elif how == "delete":
            del parent[key]
        else:  # a list where a mapping (or scalar) belongs
            parent[key] = [parent[key]]
        notes.append(f"{how} {'.'.join(path)}")
    return tree, notes


def render(doc: Tree) -> str:
    """YAML text for a tree, with the raw placeholders spliced in."""
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10**9)
    for token, raw in RAW_YAML.items():
        text = text.replace(f"'{token}'", raw).replace(token, raw)
    return text


def render_all(docs: list[Tree]) -> str:
    """Several documents in one stream."""
    return "---\n".join(render(d) if not isinstance(d, str) else d for d in docs)


@st.composite
def damaged(draw: st.DrawFn, text: str) -> bytes:
    """The text as bytes, usually intact, sometimes broken in a way a file can be."""
    data = text.encode("utf-8", errors="surrogatepass")
    how = draw(st.sampled_from(["intact"] * 6 + ["latin1", "badbyte", "nul", "truncate",
                                                 "utf16", "crlf", "bom", "overlong"]))
    if how == "latin1":
        return text.encode("latin-1", errors="replace") + b"\nname: caf\xe9\n"
    if how == "badbyte":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                                 b"\x80", b"\xfe\xff"])) + data[at:]
    if how == "nul":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"\x00" + data[at:]
    if how == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if how == "utf16":
        return text.encode("utf-16", errors="surrogatepass")
    if how == "crlf":
        return data.replace(b"\n", b"\r\n")
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "overlong":
        return data.replace(b"/", b"\xc0\xaf", 1)
    return data
