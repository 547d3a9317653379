"""`ssltrain-extract CHECKPOINT FOLDER` (and `python -m ssltrain.extract`): the command line
of feature extraction (features.py does the work). --help and --version answer before
torch is imported; every input mistake is one line, exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import Optional

from ssltrain import __version__
from ssltrain.cli import EXIT_INTERRUPTED, EXIT_USER_ERROR
from ssltrain.errors import UserError

PROG = "ssltrain-extract"
EPILOG = """\
FOLDER/<class>/... images are labelled by class (the index of its name in sorted order);
images directly in FOLDER get label -1. Writes features.npy (float32 [N, D]), index.csv
(row, path, label, class) and meta.json; load them with
  features = np.load("DIR/features.npy", mmap_mode="r")
  index = list(csv.DictReader(open("DIR/index.csv")))
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Write an encoder's features for every image under a folder.")
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a run's folder, its checkpoints/last.pt, or a backbone.pt")
    parser.add_argument("folder", metavar="FOLDER", help="a folder of images, any size")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="where to write (default: <the checkpoint's run folder>/features/<FOLDER's name>)")
    parser.add_argument("--batch-size", type=int, default=256, metavar="N", help="images per batch (default: 256)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="(default: auto)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="decoding processes (default: one per core up to 8 with CUDA, half the cores on a CPU)")
    parser.add_argument("--encoder", metavar="NAME", help="a bare backbone.pt only: the encoder it holds")
    parser.add_argument("--image-size", type=int, metavar="N", help="a bare backbone.pt only: the side it was trained at")
    parser.add_argument("--version", action="version", version=f"ssltrain {__version__}")
    return parser


def main(argv: Optional[list[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(levelname)s] - %(message)s")
    try:
        from ssltrain.features import extract  # imports torch

        extract(args.checkpoint, args.folder, args.output, args.batch_size, args.device, args.workers, args.encoder,
                args.image_size, command=shlex.join([PROG, *argv]))
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print(f"{PROG}: stopped by Ctrl-C; nothing was written", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
