"""Episode data: the episode contract, shards on disk, the generator, and clip datasets.

Every clip dataset yields dicts with "frames" uint8 (T, H, W, 3) and is DataLoader-ready:

    from torch.utils.data import DataLoader
    from ia_world.data import ClipDataset, EpisodeStore
    clips = ClipDataset(EpisodeStore("runs/demo/data/pretrain"), num_frames=16)
    batch = next(iter(DataLoader(clips, batch_size=8)))  # batch["frames"]: (8, 16, 64, 64, 3)
"""

from ia_world.data.clevrer import CLEVREREpisodes, CLEVRERQuestions, clevrer_clips
from ia_world.data.clips import ClipDataset
from ia_world.data.episode import Episode, make_env, simulate_episode
from ia_world.data.live import LiveClips
from ia_world.data.mix import MixedClips
from ia_world.data.shards import EpisodeStore, load_episodes
from ia_world.data.sources import DataConfig, DataSource, clip_dataset
from ia_world.data.ssv2 import ssv2_clips
from ia_world.data.video import VideoClips

__all__ = ["CLEVREREpisodes", "CLEVRERQuestions", "ClipDataset", "DataConfig", "DataSource",
           "Episode", "EpisodeStore", "LiveClips", "MixedClips", "VideoClips", "clevrer_clips",
           "clip_dataset", "load_episodes", "make_env", "simulate_episode", "ssv2_clips"]
