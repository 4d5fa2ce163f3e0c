"""PNG plots of a run: loss.png (loss terms + validation metric), pck.png (pose PCK curve)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plots(
    out: Path, loss_rows: list[dict[str, Any]], metric_rows: list[dict[str, Any]], metric: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    if loss_rows:
        steps = [r["step"] for r in loss_rows]
        for key in loss_rows[-1]:
            if key in ("step", "lr"):
                continue
            ax_loss.plot(steps, [r.get(key, float("nan")) for r in loss_rows], label=key)
        ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=8)
    ax_loss.set_xlabel("step")
    ax_loss.set_title("training loss terms")
    if metric_rows:
        ax_metric.plot(
            [r["step"] for r in metric_rows],
            [r.get(metric, float("nan")) for r in metric_rows],
            "o-",
        )
    ax_metric.set_xlabel("step")
    ax_metric.set_title(f"validation {metric}")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=80)
    plt.close(fig)

    curve_rows = [r for r in metric_rows if "pck_curve" in r]
    if curve_rows:
        fig, ax = plt.subplots(figsize=(5, 4))
        for row in (curve_rows[0], curve_rows[-1]):
            thresholds, values = zip(*row["pck_curve"], strict=True)
            ax.plot(thresholds, values, label=f"step {int(row['step'])}")
        ax.set_xlabel("threshold (fraction of the hand box size)")
        ax.set_ylabel("PCK")
        ax.set_ylim(0, 1)
        ax.legend()
        ax.set_title("validation PCK curve")
        fig.tight_layout()
        fig.savefig(out / "pck.png", dpi=80)
        plt.close(fig)
