"""`ia-world demo`: a small collision-rich Billiards dataset, its previews and an energy plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from omegaconf import DictConfig

from ia_world.config import check_range, to_dataclass
from ia_world.data.episode import Episode
from ia_world.data.generator import EnvConfig, GenerateConfig, generate, preview_paths
from ia_world.data.shards import EpisodeStore, atomic_write

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the file-only backend)


@dataclass
class DemoConfig:
    """configs/demo.yaml."""

    env: EnvConfig = field(default_factory=EnvConfig)
    out: str = "runs/demo"
    episodes: int = 16
    frames: int = 48
    size: int = 64
    seed: int = 0
    workers: int = 1
    preview: int = 4

    def validate(self) -> None:
        """Raise ConfigError on values out of range."""
        check_range("episodes", self.episodes, 1)
        check_range("preview", self.preview, 0, self.episodes)


def plot_energy(episode: Episode, title: str, path: Path) -> None:
    """PNG of kinetic, potential and total energy over time, collision frames marked."""
    seconds = np.arange(episode.num_frames) / float(episode.meta.get("fps", 30.0))
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    ax.plot(seconds, episode.energy["kinetic"], label="kinetic", lw=2.5)
    ax.plot(seconds, episode.energy["potential"], label="potential", lw=2.5)
    ax.plot(seconds, episode.energy["total"], "k--", label="total", lw=1.2)
    for i, frame in enumerate(sorted({c["frame"] for c in episode.collisions})):
        ax.axvline(seconds[frame], color="gray", lw=0.8, ls=":",
                   label="collision" if i == 0 else None)
    ax.set(xlabel="time [s]", ylabel="energy [J, simulation units]", title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda temp: fig.savefig(temp, format="png"))
    plt.close(fig)


def run(cfg: DictConfig) -> dict:
    """Generate the demo dataset under out/data, write out/energy.png, print a summary."""
    demo = to_dataclass(cfg, DemoConfig)
    out = Path(demo.out)
    data = GenerateConfig(env=demo.env, out=str(out / "data"), episodes=demo.episodes,
                          frames=demo.frames, size=demo.size, shard_size=demo.episodes,
                          seed=demo.seed, workers=demo.workers, preview=demo.preview)
    data.validate()
    summary = generate(data)
    store = EpisodeStore(data.out)
    busiest = max(range(len(store)), key=lambda i: len(store[i].collisions))
    episode = store[busiest]
    plot_path = out / "energy.png"
    plot_energy(episode, f"{demo.env.name} episode {busiest}: "
                f"{len(episode.collisions)} collisions", plot_path)
    total = episode.energy["total"]
    print(f"demo: dataset {data.out} ({summary['episodes']} episodes, "
          f"{summary['collision_share']:.0%} with collisions); previews "
          f"{preview_paths(data.out, 0)[0].parent}/ ({demo.preview} mp4 + gif); energy plot "
          f"{plot_path} (episode {busiest}: total energy {total[0]:.1f} -> {total[-1]:.1f})")
    return {**summary, "energy_plot": str(plot_path), "plotted_episode": busiest}
