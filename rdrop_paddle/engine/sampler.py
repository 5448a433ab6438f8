"""Endless, resumable batches: the position saved is what the training loop consumed."""
from __future__ import annotations

from paddle.io import DataLoader, DistributedBatchSampler


class ResumableBatchSampler(DistributedBatchSampler):
    """``DistributedBatchSampler`` shuffled from (seed, epoch), able to skip batches.

    Every rank draws the same order; each global batch is split across ranks in
    contiguous blocks of ``batch_size``.  Skipping works on index lists, so resuming
    mid-epoch loads no data.
    """

    def __init__(self, dataset, batch_size: int, seed: int) -> None:
        super().__init__(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
        self.seed, self.epoch_index, self.skip = seed, 0, 0

    def __iter__(self):
        self.set_epoch(self.seed * 1_000_003 + self.epoch_index)
        for i, batch in enumerate(super().__iter__()):
            if i >= self.skip:
                yield batch


class BatchStream:
    """Batches across epochs; ``state_dict`` records the epoch and the batches consumed.

    DataLoader workers and its buffer read ahead of the loop, so the position is
    counted here, where batches are taken, not in the sampler.
    """

    def __init__(self, loader: DataLoader, sampler: ResumableBatchSampler) -> None:
        self.loader, self.sampler = loader, sampler
        self.epoch, self.consumed, self._it = 0, 0, None

    def __next__(self):
        if self._it is None:
            self.sampler.epoch_index, self.sampler.skip = self.epoch, self.consumed
            self._it = iter(self.loader)
        try:
            batch = next(self._it)
        except StopIteration:
            self.epoch, self.consumed, self._it = self.epoch + 1, 0, None
            return next(self)
        self.consumed += 1
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "consumed": self.consumed}

    def set_state_dict(self, state: dict) -> None:
        self.epoch, self.consumed, self._it = int(state["epoch"]), int(state["consumed"]), None
