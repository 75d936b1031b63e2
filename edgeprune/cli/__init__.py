"""The `edgeprune` command line: each command lives in its own file and only parses, calls, prints."""

from __future__ import annotations

import typer

from edgeprune.cli.build import build
from edgeprune.cli.export import export
from edgeprune.cli.list_cmd import list_
from edgeprune.cli.profile import profile
from edgeprune.cli.prune import prune
from edgeprune.cli.train import train
from edgeprune.cli.verify import verify

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Prune a trained image CNN, convert it for phones, and prove it still works.")
app.command("build")(build)
app.command("train")(train)
app.command("prune")(prune)
app.command("export")(export)
app.command("verify")(verify)
app.command("profile")(profile)
app.command("list")(list_)


def main() -> None:
    app()
