"""A build from a command line, for every command that builds (harness/run/cli.py,
`harness boot` in harness/machine/interactive.py): the Builder from the build options
(cli.add_build_options) and the build's progress for a person on stderr."""
from __future__ import annotations

import sys
import time


def builder_from_args(args, progress=None):
    from .build import Builder, BuildOptions     # when asked: `harness --help` stays light
    opts = BuildOptions.from_env(board=args.board, sut=args.sut, xen_src=args.xen_src, xen_patches=args.xen_patches,
                                 tfa_src=args.tfa_src, cache_dir=args.cache, jobs=args.jobs)
    return Builder(opts, progress=progress)


def progress(out=sys.stderr):
    """Build progress for a person: a line per step that builds (and every 15 s while it
    does, with make's current line and the log); cached steps are only counted."""
    t0 = time.monotonic()

    def show(label: str, state: str, secs: float | None):
        stamp = f"[{time.monotonic() - t0:7.1f}s]"
        if state in ("start", "cached"):
            show.cached += state == "cached"
            return
        if show.header:
            print(show.header, file=out, flush=True)
            show.header = None
        if state.startswith("running"):
            print(f"{stamp} {label}: {secs:.0f}s, {state}", file=out, flush=True)
            return
        took = f" in {secs:.1f}s" if secs is not None else ""
        show.built += state == "built"
        print(f"{stamp} {label}: {state}{took}", file=out, flush=True)
    show.cached = show.built = 0
    show.header = None      # printed before the first line, if any
    return show
