"""Which samples each card reads: the global batch plan, the endless training stream and
the evaluation shards.

Training samples form one endless stream: epoch ``e`` is a permutation of the data set
drawn from ``(seed, e)``, and epochs follow each other without dropping or padding
anything.  A step takes the next ``Data.batch_size`` samples of the stream, cut into
``accum_steps`` micro-batches of ``cards x micro`` samples, card ``r`` taking the ``r``-th
block of ``micro``.  So every step sees the same samples whatever the number of cards and
accumulation steps, for any data set size, and a run is placed in the stream by one
number, the samples consumed (a step may span two epochs; nothing is lost there).  Each
sample also gets an augmentation seed from ``(seed, its position)``.
"""
from __future__ import annotations

import numpy as np

from rdrop_paddle.errors import UserInputError

_ORDER, _AUGMENT = 0, 1  # separate random streams derived from the run seed


def batch_plan(global_batch: int, world: int, accum: int = 0, max_per_card: int = 0) -> tuple[int, int]:
    """``(micro_batch, accum_steps)`` with cards x accum x micro = ``global_batch``.

    ``accum`` wins when set; otherwise the fewest accumulation steps whose micro-batch
    fits ``max_per_card`` (no cap: 1).
    """
    if global_batch % world:
        raise UserInputError(f"Data.batch_size {global_batch} is not divisible by {world} cards")
    per_card = global_batch // world
    if not accum:
        accum = next(a for a in range(1, per_card + 1)
                     if per_card % a == 0 and (not max_per_card or per_card // a <= max_per_card))
    if per_card % accum:
        raise UserInputError(f"Data.batch_size {global_batch} is not divisible by cards x "
                             f"Optimizer.accum_steps = {world} x {accum}")
    return per_card // accum, accum


class SampleStream:
    """Endless micro-batches of ``(index, augmentation seed)`` for one card, from ``start``.

    Args:
        size: samples in the data set.
        micro: samples per card per micro-batch.
        seed: run seed, any integer in [0, 2**63).
        rank, world: this card and the number of cards.
        start: samples of the stream already consumed (by all cards together).
    """

    def __init__(self, size: int, micro: int, seed: int, rank: int = 0, world: int = 1,
                 start: int = 0) -> None:
        if size <= 0:
            raise UserInputError("the training set is empty")
        self.size, self.micro, self.seed = size, micro, seed
        self.rank, self.world, self.start = rank, world, start
        self._orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of epoch ``epoch``."""
        if epoch not in self._orders:
            self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
            rng = np.random.default_rng([self.seed, _ORDER, epoch])
            self._orders[epoch] = rng.permutation(self.size)
        return self._orders[epoch]

    def sample(self, position: int) -> tuple[int, tuple[int, int, int]]:
        """The data set index at stream ``position`` and that sample's augmentation seed."""
        epoch, offset = divmod(position, self.size)
        return int(self.order(epoch)[offset]), (self.seed, _AUGMENT, position)

    def __iter__(self):
        position = self.start
        while True:
            first = position + self.rank * self.micro
            yield [self.sample(p) for p in range(first, first + self.micro)]
            position += self.micro * self.world


def eval_batches(size: int, batch: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """This card's share of an evaluation set, ``rank, rank + world, ...``, in batches:
    no padding, no sample twice, so exact counts can be summed over cards."""
    mine = list(range(rank, size, world))
    return [mine[i:i + batch] for i in range(0, len(mine), batch)]
