"""Paged KV-cache management with automatic prefix caching.

The KV cache is a fixed pool of blocks, each holding the cache for ``block_size`` consecutive tokens.
When a prompt's leading blocks match blocks a previous request already computed, the engine reuses them
instead of running the model over those tokens again.

A block can only be reused for exactly the same prefix: its contents depend on every token before it.
Each full block is therefore identified by a content key that covers the block and everything in front
of it. Blocks nobody references any more stay cached and are evicted least-recently-used first when a
new block is needed.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(eq=False)
class Block:
    """One KV-cache block: the model state after its last token, and who uses it."""

    block_id: int
    key: bytes | None = None
    state: int = 0
    ref_count: int = 0


@dataclass
class CacheStats:
    """Prefix-cache counters, in tokens."""

    queried_tokens: int = 0
    hit_tokens: int = 0
    evictions: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hit_tokens / self.queried_tokens if self.queried_tokens else 0.0


@dataclass
class PrefixMatch:
    """The cached blocks a prompt starts with."""

    blocks: list[Block] = field(default_factory=list)
    num_tokens: int = 0


class BlockManager:
    """A fixed pool of KV-cache blocks shared by all requests, with prefix caching."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        if num_blocks <= 0 or block_size <= 0:
            raise ValueError("num_blocks and block_size must be positive")
        self.block_size = block_size
        self.num_blocks = num_blocks
        self._free: deque[Block] = deque(Block(i) for i in range(num_blocks))
        self._cached: dict[bytes, Block] = {}
        # Cached blocks with no users, least recently used first: the eviction candidates.
        self._evictable: OrderedDict[bytes, Block] = OrderedDict()
        self.stats = CacheStats()

    @property
    def num_free_blocks(self) -> int:
        """Blocks that can be handed out now (free or evictable)."""
        return len(self._free) + len(self._evictable)

    def block_keys(self, token_ids: Sequence[int]) -> list[bytes]:
        """The content key of every full block of ``token_ids``, in order.

        The key of block ``i`` identifies the tokens of blocks ``0..i`` together, so equal keys mean
        equal prefixes. Keys are SHA-256 digests, stable across processes and restarts.
        """
        size = self.block_size
        keys = []
        for end in range(size, len(token_ids) + 1, size):
            prefix = array("I", token_ids[:end])
            keys.append(hashlib.sha256(prefix.tobytes()).digest())
        return keys

    def match_prefix(self, keys: Sequence[bytes]) -> PrefixMatch:
        """Take a reference on the longest run of cached blocks that ``keys`` starts with."""
        match = PrefixMatch()
        for key in keys:
            block = self._cached.get(key)
            if block is None:
                break
            self._acquire(block)
            match.blocks.append(block)
        match.num_tokens = len(match.blocks) * self.block_size
        self.stats.queried_tokens += len(keys) * self.block_size
        self.stats.hit_tokens += match.num_tokens
        return match

    def cache_block(self, key: bytes, state: int) -> Block | None:
        """A new referenced block holding ``state`` under ``key``; None when the pool is exhausted."""
        block = self._cached.get(key)
        if block is not None:  # another request computed the same block meanwhile
            self._acquire(block)
            return block
        block = self._take_block()
        if block is None:
            return None
        block.key = key
        block.state = state
        block.ref_count = 1
        self._cached[key] = block
        return block

    def release(self, blocks: Sequence[Block]) -> None:
        """Drop one reference on each block; unreferenced blocks stay cached until evicted."""
        for block in reversed(blocks):
            block.ref_count -= 1
            if block.ref_count == 0:
                assert block.key is not None
                self._evictable[block.key] = block

    def _acquire(self, block: Block) -> None:
        if block.ref_count == 0:
            assert block.key is not None
            del self._evictable[block.key]
        block.ref_count += 1

    def _take_block(self) -> Block | None:
        if self._free:
            return self._free.popleft()
        if not self._evictable:
            return None
        key, block = self._evictable.popitem(last=False)
        del self._cached[key]
        block.key = None
        self.stats.evictions += 1
        return block
