"""Splitting a source between torchrun processes: whole sequences first, then ranges of frames."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from inpaintseg.data.sources import Frame, Sequence, Source
from inpaintseg.video import VideoSequence


@dataclass(frozen=True)
class Shard:
    """Frames ``start`` .. ``stop - 1`` of ``sequence``: one process's part of the work."""

    sequence: Sequence
    start: int
    stop: int

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop == len(self.sequence)


def shard_source(source: Source, rank: int, world: int) -> list[Shard]:
    """This process's share of ``source``, in source order.

    With at least ``world`` sequences, whole sequences are dealt out, longest first to the least loaded
    rank (balanced frame counts, deterministic). With fewer sequences (e.g. one video), every sequence is
    split into ``world`` contiguous frame ranges and rank r takes the r-th. Over all ranks, every frame is
    in exactly one shard.
    """
    seqs = source.sequences
    if world <= 1:
        return [Shard(s, 0, len(s)) for s in seqs]
    if len(seqs) >= world:
        loads = [0] * world
        owner = {}
        for i in sorted(range(len(seqs)), key=lambda i: (-len(seqs[i]), i)):
            r = min(range(world), key=lambda r: (loads[r], r))
            owner[i] = r
            loads[r] += len(seqs[i])
        return [Shard(s, 0, len(s)) for i, s in enumerate(seqs) if owner[i] == rank]
    shards = []
    for s in seqs:
        start, stop = len(s) * rank // world, len(s) * (rank + 1) // world
        if stop > start:
            shards.append(Shard(s, start, stop))
    return shards


def shard_frames(shard: Shard) -> Iterator[Frame]:
    seq = shard.sequence
    if shard.whole:
        yield from seq
        return
    names = seq.frame_names
    try:
        for i in range(shard.start, shard.stop):
            yield Frame(seq.name, names[i], i, seq.read(i))
    finally:
        if isinstance(seq, VideoSequence):
            seq.close()
