"""PNG plots of a bench-sampling run (matplotlib, an optional extra)."""

from __future__ import annotations

from pathlib import Path

from core.errors import ConfigError

MEASURES = {
    "octets_error": "relative error of total octets (scaled)",
    "top_sources_recall": "recall of the top-10 sources by octets",
}
SCENARIOS = ("flood", "fast_scan", "slow_scan")


def write_plots(summary: list[dict[str, object]], directory: Path) -> list[Path]:
    """Error vs rate per mode (mean with its spread across trials), detection rate vs rate."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("plots need matplotlib: pip install 'spanflow[plots]'") from exc
    modes = sorted({str(row["mode"]) for row in summary})
    written = []
    figure, axes = plt.subplots(1, len(MEASURES), figsize=(11, 4))
    for axis, (measure, title) in zip(axes, MEASURES.items(), strict=True):
        for mode in modes:
            rows = [row for row in summary if row["mode"] == mode]
            rates = [float(str(row["rate"])) for row in rows]
            means = [float(str(row[measure])) for row in rows]
            spreads = [float(str(row[measure + "_sd"])) for row in rows]
            axis.errorbar(rates, means, yerr=spreads, marker="o", capsize=3, label=mode)
        axis.set_xscale("log")
        axis.set_xlabel("sampling rate N (1 in N)")
        axis.set_title(title, fontsize=10)
        axis.grid(True, alpha=0.3)
    axes[0].axhline(0, color="grey", linewidth=0.8)
    axes[0].legend()
    figure.tight_layout()
    errors_png = directory / "errors.png"
    figure.savefig(errors_png, dpi=110)
    written.append(errors_png)
    plt.close(figure)

    figure, axes = plt.subplots(1, len(SCENARIOS), figsize=(11, 3.6), sharey=True)
    for axis, scenario in zip(axes, SCENARIOS, strict=True):
        for mode in modes:
            rows = [row for row in summary if row["mode"] == mode]
            rates = [float(str(row["rate"])) for row in rows]
            detected = [float(str(row["detect_" + scenario])) for row in rows]
            axis.plot(rates, detected, marker="o", label=mode)
        axis.set_xscale("log")
        axis.set_ylim(-0.05, 1.05)
        axis.set_xlabel("sampling rate N (1 in N)")
        axis.set_title(f"{scenario.replace('_', ' ')} detected", fontsize=10)
        axis.grid(True, alpha=0.3)
    axes[0].set_ylabel("share of trials")
    axes[0].legend()
    figure.tight_layout()
    detection_png = directory / "detection.png"
    figure.savefig(detection_png, dpi=110)
    written.append(detection_png)
    plt.close(figure)
    return written
