"""latest.png: the headline ratios (matplotlib, Agg, no display).

Left: how many times faster or smaller twelve is than each peer (peer ÷ twelve; right of 1 is
twelve ahead). Right: each target's measured value relative to it, oriented so that ≤ 1 meets
it (green) and > 1 does not (red).
"""
from __future__ import annotations

from pathlib import Path

PEERS = (("pyinstaller", "PyInstaller (onedir)"), ("pex", "pex"), ("shiv", "shiv"),
         ("venv", "venv + pip (bare gunicorn)"))
COLORS = {"pyinstaller": "#4c72b0", "pex": "#dd8452", "shiv": "#55a868", "venv": "#8172b3"}


def available() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no chart drawn"
    return None


def advantages(results: dict) -> dict[str, dict[str, float]]:
    """metric → peer key → peer ÷ twelve."""
    build, out = results.get("build", {}), {}
    for kind in ("cold", "warm", "incremental"):
        mine = build.get("twelve", {}).get(kind, {}).get("median")
        out[f"{kind} build"] = {k: build[k][kind]["median"] / mine for k, _ in PEERS
                                if mine and build.get(k, {}).get(kind, {}).get("median")}
    sizes = {row["label"]: row for row in results.get("size", [])}
    for metric, field in (("size", "bytes"), (".tar.gz", "targz")):
        mine = sizes.get("twelve", {}).get(field)
        out[metric] = {k: sizes[label][field] / mine for k, label in PEERS
                       if mine and label in sizes}
    launch = results.get("launch", {})
    mine = launch.get("twelve", {}).get("median")
    out["launch → 200"] = {k: launch[label]["median"] / mine for k, label in PEERS
                           if mine and launch.get(label, {}).get("median")}
    return out


def target_scores(results: dict) -> list[tuple[str, float, bool]]:
    """(target, measured relative to target with ≤ 1 meeting it, met)."""
    scores = []
    for t in results.get("targets", []):
        if t["measured"] is None or t["met"] is None or not t["limit"]:
            continue
        score = t["limit"] / t["measured"] if t["at_least"] else t["measured"] / t["limit"]
        scores.append((t["target"], max(score, 0.02) if score > 0 else 0.02, t["met"]))
    return scores


def draw(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6.5),
                                      gridspec_kw={"width_ratios": [1, 1.2]})
    _draw_advantages(left, advantages(results))
    _draw_targets(right, target_scores(results))
    meta = results["meta"]
    fig.suptitle(f"twelve benchmark ({meta['mode']} run, {meta['machine']['nproc']} CPUs, "
                 f"{meta['started'][:10]}) — benchmarks/results/latest.md", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_advantages(ax, data: dict[str, dict[str, float]]) -> None:
    metrics = list(data)
    peers = [(k, label) for k, label in PEERS if any(k in v for v in data.values())]
    if not peers:
        ax.text(0.5, 0.5, "no peer measured in this run", ha="center", transform=ax.transAxes)
        return
    height = 0.8 / max(1, len(peers))
    for i, (key, label) in enumerate(peers):
        ys = [m + i * height for m in range(len(metrics))]
        values = [data[metric].get(key) for metric in metrics]
        shown = [(y, v) for y, v in zip(ys, values) if v]
        ax.barh([y for y, _ in shown], [v for _, v in shown], height=height, label=label,
                color=COLORS[key])
        for y, v in shown:
            ax.annotate(f"{v:.2g}×", (v, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7)
    _log_axis(ax, [v for per in data.values() for v in per.values()])
    ax.set_yticks([m + 0.4 - height / 2 for m in range(len(metrics))], metrics)
    ax.invert_yaxis()
    ax.set_xlabel("peer ÷ twelve (right of 1: twelve is faster / smaller)")
    ax.set_title("twelve against each peer (medians)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)


def _draw_targets(ax, scores: list[tuple[str, float, bool]]) -> None:
    if not scores:
        ax.text(0.5, 0.5, "no target measured", ha="center")
        return
    names = [name for name, _, _ in scores]
    values = [s for _, s, _ in scores]
    ax.barh(range(len(scores)), values,
            color=["#55a868" if met else "#c44e52" for _, _, met in scores])
    for y, v in enumerate(values):
        ax.annotate(f"{v:.2g}", (v, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=7)
    _log_axis(ax, values)
    ax.set_yticks(range(len(scores)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("measured relative to target (≤ 1 meets it; p99 targets: see latest.md)")
    ax.set_title("twelve's targets: green met, red not")


def _log_axis(ax, values: list[float]) -> None:
    """A log x axis from the data's range, with ticks written as plain numbers."""
    ticks = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    low = min([v for v in values if v] + [1]) / 1.5
    high = max(values + [1]) * 1.6
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_xticks([t for t in ticks if low <= t <= high], [f"{t:g}" for t in ticks
                                                          if low <= t <= high])
    ax.minorticks_off()
    ax.axvline(1, color="black", linewidth=1)
