"""Per-image vision features, reused across turns.

Keyed by the image's content hash plus the vision settings (never the file path), so the same
picture asked about again skips the vision tower, while an edited image or changed tiling
always re-encodes. Features are stored per image (a list of per-view arrays: tiles, then the
thumbnail), so adding a second image to a conversation only encodes the new one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["EncodedImages", "VisionFeatureCache", "image_cache_key"]


def image_cache_key(content_hash: str, vision_key: tuple[object, ...]) -> str:
    """The cache key for one image under one set of vision settings."""
    return content_hash + "|" + ",".join(str(v) for v in vision_key)


@dataclass(frozen=True)
class EncodedImages:
    """Features for every view of every image in a prompt, and how many were cache hits."""

    features: list[Any]
    hits: int
    encoded_views: int


class VisionFeatureCache:
    """An LRU of per-image feature lists (MLX arrays), bounded by image count."""

    def __init__(self, max_images: int = 16) -> None:
        self.max_images = max_images
        self._items: OrderedDict[str, list[Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Drop everything (model switch)."""
        self._items.clear()

    def get(self, key: str) -> list[Any] | None:
        """Features for ``key`` or None; a hit becomes most recent."""
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: str, features: list[Any]) -> None:
        """Store features, evicting the least recently used image when full."""
        self._items[key] = features
        self._items.move_to_end(key)
        while len(self._items) > self.max_images:
            self._items.popitem(last=False)

    def encode(
        self,
        model: Any,
        keys: Sequence[str],
        views_per_image: Sequence[int],
        inputs: dict[str, Any],
    ) -> EncodedImages:
        """Features for all images of a prompt, encoding only the views of cache misses.

        Args:
            model: the mlx-vlm LFM2-VL model (has ``encode_images``).
            keys: one cache key per image, in prompt order.
            views_per_image: vision-tower views (tiles + thumbnail) of each image.
            inputs: the processor's ``pixel_values``, ``spatial_shapes``,
                ``pixel_attention_mask`` for all views of all images.
        """
        import mlx.core as mx

        starts = [sum(views_per_image[:i]) for i in range(len(views_per_image))]
        found = [self.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            rows = [r for i in missing for r in range(starts[i], starts[i] + views_per_image[i])]
            index = mx.array(rows)
            encoded = model.encode_images(
                inputs["pixel_values"][index],
                spatial_shapes=inputs["spatial_shapes"][index],
                pixel_attention_mask=inputs["pixel_attention_mask"][index],
            )
            mx.eval(*encoded)
            offset = 0
            for i in missing:
                found[i] = list(encoded[offset : offset + views_per_image[i]])
                offset += views_per_image[i]
                self.put(keys[i], found[i] or [])
        features = [view for image in found for view in (image or [])]
        return EncodedImages(
            features, len(keys) - len(missing), sum(views_per_image[i] for i in missing)
        )
