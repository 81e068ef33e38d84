"""Summarise py-spy collapsed stacks (from `bench/hotpath.py --profile`): top functions.

    uv run python bench/stacks.py DIR/heartbeat-1.txt [--top 40] [--filter app/]

Prints each function's inclusive share (on the stack) and self share (at the top) of samples.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--filter", default="", help="only frames whose text contains this")
    args = parser.parse_args()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for path in args.files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    print(f"{total} samples")
    print("incl%  self%  frame")
    for frame, n in inclusive.most_common():
        if args.filter and args.filter not in frame:
            continue
        print(f"{100 * n / total:5.1f}  {100 * own[frame] / total:5.1f}  {frame[:150]}")
        args.top -= 1
        if args.top <= 0:
            break


if __name__ == "__main__":
    main()
