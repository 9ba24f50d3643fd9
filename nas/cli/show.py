"""``nas show ARCH``: an architecture's text summary and its picture.

Examples::

    nas show '(sequential linear[width=64] leaky_relu)' --out arch.svg       # a derivation string (einspace)
    nas show 02012100 --space nb-macro --out macro.png                      # a space's architecture string
    nas show 3f2a9c1b07e4 --db sqlite:///nas.db --out best.svg              # a hash (prefix) in a store
    nas show search_export/1_3f2a9c1b07e4....onnx --out best.svg            # a candidate ONNX file
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def show(
    arch: Annotated[str, typer.Argument(help="a derivation string, an architecture string (with --space), a hash "
                                             "(with --db) or an ONNX file")],
    space: Annotated[str | None, typer.Option(help="the space of a derivation/architecture string (default "
                                                      "einspace)")] = None,
    db: Annotated[str | None, typer.Option(help="a store's URL, to look ARCH up as a hash (or prefix)")] = None,
    input_shape: Annotated[str | None, typer.Option(help="input shape without batch, C,H,W or C,L (default: the "
                                                            "space's example input)")] = None,
    num_classes: Annotated[int, typer.Option(min=1, help="classes of the classifier head")] = 10,
    out: Annotated[Path | None, typer.Option(help="write the picture here: .svg or .png by the "
                                                     "extension")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Print an architecture's summary (ops, params, FLOPs, depth, input/output shapes) and draw it (--out)."""
    from nas.cli.sample import _parse_shape
    from nas.viz.picture import PICTURE_FORMATS, PictureError, write_picture
    from nas.viz.source import resolve

    if out is not None and out.suffix.lower().lstrip(".") not in PICTURE_FORMATS:
        raise PictureError(f"cannot tell the picture format of {str(out)!r}: its name must end in .svg or .png")
    view = resolve(arch, space=space, db=db, input_shape=_parse_shape(input_shape) if input_shape else None,
                   num_classes=num_classes)
    if out is not None:
        write_picture(view.graph, out)
    if as_json:
        typer.echo(json.dumps({**view.summary(), "picture": None if out is None else str(out)}, indent=2))
        return
    typer.echo(view.summary_text())
    if out is not None:
        typer.echo(f"picture: {out}")
