"""A Gantt chart of a schedule: QPUs as rows, fragments as bars, precedence as arrows."""

from __future__ import annotations

from pathlib import Path

from .model import Problem, Schedule


def render_gantt(
    problem: Problem, schedule: Schedule, path: str | Path, title: str | None = None
) -> Path:
    """Draw ``schedule`` to a PNG at ``path``; each job has one colour, deadlines are ticks,
    and an arrow joins the last fragment of a measuring subcircuit to the first fragment of
    the preparing subcircuit that waits for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    problem = problem.recut(schedule.recut)  # re-cut (LO) jobs have no precedence to draw
    rows = {q.name: i for i, q in enumerate(problem.qpus)}
    for f in schedule.fragments:
        rows.setdefault(f.qpu, len(rows))
    jobs = sorted({f.job for f in schedule.fragments})
    cmap = plt.get_cmap("tab20")
    colour = {j: cmap(i % 20) for i, j in enumerate(jobs)}
    fig, ax = plt.subplots(figsize=(12, 1.0 + 0.45 * len(rows)))
    for f in schedule.fragments:
        y = rows[f.qpu]
        ax.barh(y, f.end - f.start, left=f.start, height=0.6, color=colour[f.job],
                edgecolor="black", linewidth=0.4)
        if f.end - f.start > 0:
            ax.text((f.start + f.end) / 2, y, f"{f.job}.{f.subcircuit}", ha="center",
                    va="center", fontsize=6, clip_on=True)
    for job in problem.jobs:
        if job.name not in schedule.admitted:
            continue
        frags = schedule.fragments_of(job.name)
        for a, b in job.precedence:
            before = [f for f in frags if f.subcircuit == a]
            after = [f for f in frags if f.subcircuit == b]
            if before and after:
                src = max(before, key=lambda f: f.end)
                dst = min(after, key=lambda f: f.start)
                ax.annotate("", xy=(dst.start, rows[dst.qpu]), xytext=(src.end, rows[src.qpu]),
                            arrowprops={"arrowstyle": "->", "color": colour[job.name],
                                        "lw": 1.0})
        ends = [f.end for f in frags]
        if ends:
            y = rows[max(frags, key=lambda f: f.end).qpu]
            ax.plot([job.deadline], [y + 0.38], marker="v", color=colour[job.name], ms=5)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    dropped = len(problem.jobs) - len(schedule.admitted)
    ax.set_title(title or f"{schedule.method or 'schedule'}: {schedule.served} served, "
                 f"{dropped} dropped (arrows: LOCC precedence, triangles: deadlines)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
