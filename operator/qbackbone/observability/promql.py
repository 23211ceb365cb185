"""The PromQL the dashboard uses, evaluated over recorded scrapes (no Prometheus needed).

Enough of PromQL to draw ``charts/qbackbone/dashboards/qbackbone.json`` from a recording of
``/metrics`` (hack/render-dashboard.py) and to check its queries in tests: selectors with
``=``, ``!=``, ``=~``, ``!~`` matchers; ``rate`` and ``increase`` over a range; ``sum``,
``max``, ``min``, ``avg``, ``count`` with ``by (...)``; ``histogram_quantile``; ``+ - * /``
between vectors with the same labels or with a number; ``vector > number`` (and the other
comparisons) as filters. Grafana's variables are substituted
first (``$__rate_interval``, ``$__range``; ``$var`` matches everything). Anything else is a
``ValueError`` naming what is not supported, so a dashboard query outside the subset fails
its test rather than drawing nothing.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]
Value = Vector | float
Scrape = Mapping[tuple[str, Labels], float]  # (sample name, labels) -> value

LOOKBACK = 300.0  # seconds an instant selector looks back, as Prometheus does
AGGREGATIONS = ("sum", "max", "min", "avg", "count")
COMPARISONS = (">", "<", ">=", "<=", "==", "!=")  # filters: keep the samples that pass
_TOKEN = re.compile(r'\s*(?:(?P<dur>\d+[smhd])(?![a-zA-Z0-9_])|(?P<num>\d+(?:\.\d+)?(?:e[-+]?\d+)?)'
                    r'|(?P<id>[a-zA-Z_:][a-zA-Z0-9_:]*)|(?P<str>"(?:[^"\\]|\\.)*")'
                    r'|(?P<op>=~|!~|!=|>=|<=|==|[-+*/(){}\[\],=<>]))')


def substitute(expr: str, rate_interval: str, range_: str) -> str:
    """Grafana's variables: the interval and range given, any other ``$var`` matching all."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__range", range_)
    return re.sub(r'"\$\{?\w+\}?"', '".*"', expr)


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r} in {expr!r}")
        out.append(match.group(match.lastgroup or "op"))
        pos = match.end()
    return out


def _seconds(text: str) -> float:
    return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[text[-1]]


@dataclass(frozen=True)
class Selector:
    """``name{matchers}``, optionally with a range ``[window]``."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]
    window: float | None = None

    def matches(self, labels: Labels) -> bool:
        found = dict(labels)
        for label, op, want in self.matchers:
            have = found.get(label, "")
            ok = {"=": have == want, "!=": have != want}.get(op)
            if ok is None:
                ok = re.fullmatch(want, have) is not None
                ok = ok if op == "=~" else not ok
            if not ok:
                return False
        return True


@dataclass(frozen=True)
class Number:
    """A literal."""

    value: float


@dataclass(frozen=True)
class RangeFunction:
    """``rate(selector[window])`` or ``increase(...)``."""

    func: str
    selector: Selector


@dataclass(frozen=True)
class Aggregate:
    """``op by (labels) (inner)``; ``by`` None aggregates everything."""

    op: str
    by: tuple[str, ...] | None
    inner: Node


@dataclass(frozen=True)
class Quantile:
    """``histogram_quantile(q, inner)``."""

    q: float
    inner: Node


@dataclass(frozen=True)
class Binary:
    """``left op right``."""

    op: str
    left: Node
    right: Node


Node = Number | Selector | RangeFunction | Aggregate | Quantile | Binary


class _Parser:
    def __init__(self, expr: str) -> None:
        self.toks, self.i, self.expr = _tokens(expr), 0, expr

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise ValueError(f"expected {want or 'more'} at token {self.i} of {self.expr!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.comparison()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r} in {self.expr!r}")
        return node

    def comparison(self) -> Node:
        node = self.additive()
        while self.peek() in COMPARISONS:
            op = self.take()
            node = Binary(op, node, self.additive())
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = Binary(op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.term()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = Binary(op, node, self.term())
        return node

    def term(self) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.additive()
            self.take(")")
            return node
        if re.fullmatch(r"\d+(\.\d+)?(e[-+]?\d+)?", tok):
            return Number(float(tok))
        if tok in AGGREGATIONS:
            by: tuple[str, ...] | None = None
            if self.peek() == "by":
                self.take()
                by = self.labels()
            self.take("(")
            inner = self.additive()
            self.take(")")
            return Aggregate(tok, by, inner)
        if tok in ("rate", "increase"):
            self.take("(")
            selector = self.selector(self.take())
            if selector.window is None:
                raise ValueError(f"{tok}() needs a range selector in {self.expr!r}")
            self.take(")")
            return RangeFunction(tok, selector)
        if tok == "histogram_quantile":
            self.take("(")
            q = float(self.take())
            self.take(",")
            inner = self.additive()
            self.take(")")
            return Quantile(q, inner)
        if re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", tok) and self.peek() != "(":
            return self.selector(tok)
        raise ValueError(f"{tok!r} is not supported (in {self.expr!r})")

    def labels(self) -> tuple[str, ...]:
        self.take("(")
        names = []
        while self.peek() != ")":
            names.append(self.take())
            if self.peek() == ",":
                self.take()
        self.take(")")
        return tuple(names)

    def selector(self, name: str) -> Selector:
        matchers = []
        if self.peek() == "{":
            self.take()
            while self.peek() != "}":
                label, op, value = self.take(), self.take(), self.take()
                if op not in ("=", "!=", "=~", "!~") or not value.startswith('"'):
                    raise ValueError(f"bad matcher {label}{op}{value} in {self.expr!r}")
                matchers.append((label, op, value[1:-1].replace('\\"', '"')))
                if self.peek() == ",":
                    self.take()
            self.take("}")
        window = None
        if self.peek() == "[":
            self.take()
            window = _seconds(self.take())
            self.take("]")
        return Selector(name, tuple(matchers), window)


def parse(expr: str) -> Node:
    """The syntax tree of ``expr`` (variables already substituted); ValueError if unsupported."""
    return _Parser(expr).parse()


def children(node: Node) -> list[Node]:
    """The sub-expressions of a node."""
    if isinstance(node, Aggregate | Quantile):
        return [node.inner]
    if isinstance(node, Binary):
        return [node.left, node.right]
    return []


def metric_names(node: Node) -> set[str]:
    """The sample names a query reads (e.g. ``qbackbone_job_duration_seconds_bucket``)."""
    if isinstance(node, Selector):
        return {node.name}
    if isinstance(node, RangeFunction):
        return {node.selector.name}
    return set().union(*(metric_names(c) for c in children(node)))


class Recording:
    """Scrapes over time: ``add(t, samples)`` in time order, then ``evaluate(expr, t)``."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.scrapes: list[Scrape] = []

    def add(self, t: float, samples: Scrape) -> None:
        """One scrape at time ``t`` (seconds)."""
        if self.times and t < self.times[-1]:
            raise ValueError("scrapes must be added in time order")
        self.times.append(t)
        self.scrapes.append(samples)

    def _at(self, t: float) -> int | None:
        i = bisect.bisect_right(self.times, t) - 1
        return i if i >= 0 and t - self.times[i] <= LOOKBACK else None

    def _series(self, sel: Selector, scrape: Scrape) -> Iterator[tuple[Labels, float]]:
        for (name, labels), value in scrape.items():
            if name == sel.name and sel.matches(labels):
                yield labels, value

    def _increase(self, sel: Selector, t: float) -> Vector:
        """Prometheus' extrapolated increase over ``[t - window, t]`` (counter resets counted
        from 0; extrapolated to the window's edges by at most half a scrape interval unless
        the samples reach them, and never below zero)."""
        assert sel.window is not None
        start = t - sel.window
        lo = bisect.bisect_left(self.times, start)
        hi = bisect.bisect_right(self.times, t)
        points: dict[Labels, list[tuple[float, float]]] = {}
        for i in range(lo, hi):
            for labels, value in self._series(sel, self.scrapes[i]):
                points.setdefault(labels, []).append((self.times[i], value))
        out: Vector = {}
        for labels, pts in points.items():
            sampled = pts[-1][0] - pts[0][0]
            if len(pts) < 2 or sampled <= 0:
                continue
            growth = sum(b - a if b >= a else b for (_, a), (_, b) in itertools.pairwise(pts))
            average = sampled / (len(pts) - 1)
            to_start, to_end = pts[0][0] - start, t - pts[-1][0]
            if growth > 0 and pts[0][1] >= 0:
                to_start = min(to_start, sampled * pts[0][1] / growth)  # not below zero
            span = sampled
            span += to_start if to_start < 1.1 * average else average / 2
            span += to_end if to_end < 1.1 * average else average / 2
            out[labels] = growth * span / sampled
        return out

    def evaluate(self, expr: str | Node, t: float) -> Value:
        """The instant value of ``expr`` at time ``t``: a vector, or a number."""
        node = parse(expr) if isinstance(expr, str) else expr
        return self._eval(node, t)

    def range(self, expr: str, times: Sequence[float]) -> dict[Labels, list[float]]:
        """``expr`` at each of ``times``: one list per series, NaN where it has no value."""
        node = parse(expr)
        out: dict[Labels, list[float]] = {}
        for k, t in enumerate(times):
            value = self._eval(node, t)
            vector = value if isinstance(value, dict) else {frozenset(): value}
            for labels, v in vector.items():
                out.setdefault(labels, [math.nan] * len(times))[k] = v
        return out

    def _eval(self, node: Node, t: float) -> Value:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Selector):
            i = self._at(t)
            return {} if i is None else dict(self._series(node, self.scrapes[i]))
        if isinstance(node, RangeFunction):
            increase = self._increase(node.selector, t)
            window = node.selector.window or 1.0
            return increase if node.func == "increase" else {
                k: v / window for k, v in increase.items()}
        if isinstance(node, Aggregate):
            return _aggregate(node.op, node.by, _vector(self._eval(node.inner, t)))
        if isinstance(node, Quantile):
            return _quantile(node.q, _vector(self._eval(node.inner, t)))
        return _binary(node.op, self._eval(node.left, t), self._eval(node.right, t))


def _vector(value: Value) -> Vector:
    if not isinstance(value, dict):
        raise ValueError("expected a vector, got a number")
    return value


def _aggregate(op: str, by: tuple[str, ...] | None, vector: Vector) -> Vector:
    groups: dict[Labels, list[float]] = {}
    for labels, v in vector.items():
        key = frozenset((k, val) for k, val in labels if by is not None and k in by)
        groups.setdefault(key, []).append(v)
    fold: dict[str, Callable[[list[float]], float]] = {
        "sum": sum, "max": max, "min": min, "count": len,
        "avg": lambda vs: sum(vs) / len(vs)}
    return {k: float(fold[op](vs)) for k, vs in groups.items()}


def _quantile(q: float, vector: Vector) -> Vector:
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for labels, v in vector.items():
        le = dict(labels).get("le")
        if le is None:
            continue
        key = frozenset((k, val) for k, val in labels if k != "le")
        groups.setdefault(key, []).append((float(le), v))
    out: Vector = {}
    for key, buckets in groups.items():
        buckets.sort()
        total = buckets[-1][1]
        if total <= 0 or not math.isinf(buckets[-1][0]):
            out[key] = math.nan
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for upper, count in buckets:
            if count >= rank:
                if math.isinf(upper):
                    out[key] = lower  # the highest finite bound, as Prometheus answers
                else:
                    share = (rank - below) / (count - below) if count > below else 0.0
                    out[key] = lower + (upper - lower) * share
                break
            lower, below = upper, count
    return out


def _binary(op: str, left: Value, right: Value) -> Value:
    def apply(a: float, b: float) -> float:
        if op == "/":
            return a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a))
        return {"+": a + b, "-": a - b, "*": a * b}[op]

    if op in COMPARISONS:
        test = {">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
                "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
                "!=": lambda a, b: a != b}[op]
        if not isinstance(left, dict) or isinstance(right, dict):
            raise ValueError(f"only vector {op} number is supported")
        return {k: v for k, v in left.items() if test(v, right)}
    if isinstance(left, float) and isinstance(right, float):
        return apply(left, right)
    if isinstance(left, float):
        return {k: apply(left, v) for k, v in _vector(right).items()}
    if isinstance(right, float):
        return {k: apply(v, right) for k, v in left.items()}
    return {k: apply(v, right[k]) for k, v in left.items() if k in right}
