"""`python -m ssltrain` (and `torchrun -m ssltrain`) run the same command as `ssltrain`."""

from ssltrain.cli import main

main()
