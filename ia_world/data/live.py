"""Live clips: episodes simulated on the fly inside DataLoader workers, never repeating a seed."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import IterableDataset, get_worker_info

from ia_world.data.clips import clip_of_episode
from ia_world.data.episode import make_env, simulate_episode
from ia_world.data.shards import episode_seed

EPOCH_STRIDE = 2**40  # episode indices of one epoch; epochs never share an index


class LiveClips(IterableDataset):
    """Endless stream of clip dicts (as ClipDataset's), one fresh episode per clip.

    Global clip index i (for rank r of R) = (b * R + r) * block + j for the j-th clip of block b;
    DataLoader worker w of W simulates the blocks b = w, w + W, ..., so with block = batch_size
    the batches come out in the same order for any number of workers, and the stream is a
    function of (seed, epoch, start_block) alone. Episode i has seed episode_seed(seed, i).
    """

    def __init__(self, env_id: str, num_frames: int, frame_stride: int = 1, size: int = 64,
                 seed: int = 0, block: int = 1, start_block: int = 0, rank: int = 0,
                 world_size: int = 1, env_kwargs: dict | None = None):
        super().__init__()
        self.env_id, self.size, self.env_kwargs = env_id, size, dict(env_kwargs or {})
        self.num_frames, self.frame_stride = num_frames, frame_stride
        self.seed, self.block, self.start_block = seed, block, start_block
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Move to another disjoint range of seeds (call before iterating again)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        worker_id, num_workers = (0, 1) if worker is None else (worker.id, worker.num_workers)
        span = (self.num_frames - 1) * self.frame_stride + 1
        env = make_env(self.env_id, size=self.size, **self.env_kwargs)
        try:
            block = self.start_block + worker_id
            while True:
                position = (block * self.world_size + self.rank) * self.block
                first = self.epoch * EPOCH_STRIDE + position
                for index in range(first, first + self.block):
                    episode = simulate_episode(env, episode_seed(self.seed, index), span)
                    yield clip_of_episode(episode, 0, self.num_frames, self.frame_stride, index)
                block += num_workers
        finally:
            env.close()
