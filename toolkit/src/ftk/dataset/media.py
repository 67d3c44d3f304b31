"""Checks of a sample's image/video/audio paths, relative to the media root (LLaMA-Factory's `media_dir`).

A path must stay inside the media root once resolved (no `..`, absolute path or symlink escape), exist, be a
readable file and, for images and video frames, be an image Pillow decodes in full (`load()`, not `verify()`,
which reads only the header: a truncated JPEG passes `verify()` and then stops training with "image file is
truncated"). Results are cached per path
(bounded), so a data set that reuses a few images costs one check per image, not per sample.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

CACHE_SIZE = 4096


class MediaChecker:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._cache: OrderedDict[tuple[str, bool], tuple[str, str] | None] = OrderedDict()

    def check(self, path: str, image: bool) -> tuple[str, str] | None:
        """None when fine, else (what is wrong, how to fix it)."""
        key = (path, image)
        cache = self._cache
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        result = self._check(path, image)
        cache[key] = result
        if len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
        return result

    def _check(self, path: str, image: bool) -> tuple[str, str] | None:
        root = self.root
        if not path.strip():
            return "empty path", "give the file's path relative to the media root"
        target = Path(os.path.realpath(root / path))
        if target != root and root not in target.parents:
            how = "an absolute path" if os.path.isabs(path) else ("'..'" if ".." in Path(path).parts else "a symlink")
            return (
                f"'{path}' resolves to {target}, outside the media root {root} (through {how})",
                "copy the file under the media root (--media-root / MEDIA_ROOT) and give its relative path",
            )
        if not target.exists():
            return (
                f"'{path}' does not exist under {root}",
                "fix the path (relative to the media root) or add the file",
            )
        if not target.is_file():
            return f"'{path}' is not a file", "point at a file, not a directory"
        if not os.access(target, os.R_OK):
            return f"'{path}' is not readable", f"make it readable (chmod a+r {target})"
        if image:
            return _verify_image(target, path)
        return None


def _verify_image(target: Path, shown: str) -> tuple[str, str] | None:
    from PIL import Image, UnidentifiedImageError  # Pillow only when a data set has images

    try:
        with Image.open(target) as im:
            im.load()
    except UnidentifiedImageError:
        return f"'{shown}' is not an image Pillow can read", "replace it with a PNG/JPEG/WebP image"
    except PermissionError:
        return f"'{shown}' is not readable", f"make it readable (chmod a+r {target})"
    except Exception as err:  # truncated or corrupt files raise assorted errors from the decoders
        return f"'{shown}' cannot be decoded ({err}); training would stop on it", "re-export the image"
    return None
