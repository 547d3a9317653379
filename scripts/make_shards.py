#!/usr/bin/env python
"""Write WebDataset tar shards from an image folder: python scripts/make_shards.py SRC OUT
(the same as the installed `ssltrain-make-shards`; see ssltrain/data/shard_writer.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssltrain.data.shard_writer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
