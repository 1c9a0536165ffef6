"""Episode data: the episode contract, shards on disk, the generator, and clip datasets."""

from ia_world.data.shards import EpisodeStore, load_episodes

__all__ = ["EpisodeStore", "load_episodes"]
