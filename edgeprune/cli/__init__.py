"""The `edgeprune` command line: each command lives in its own file and only parses, calls, prints."""

from __future__ import annotations

import typer

from edgeprune.cli.build import build
from edgeprune.cli.compare import compare
from edgeprune.cli.device import device_app
from edgeprune.cli.export import export
from edgeprune.cli.keys import keys_app
from edgeprune.cli.list_cmd import list_
from edgeprune.cli.package import package
from edgeprune.cli.profile import profile
from edgeprune.cli.prune import prune
from edgeprune.cli.publish import publish
from edgeprune.cli.rebuild import rebuild
from edgeprune.cli.report import report
from edgeprune.cli.serve import serve
from edgeprune.cli.signing_key import signing_key_app
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
app.command("compare")(compare)
app.command("package")(package)
app.command("report")(report)
app.command("rebuild")(rebuild)
app.command("serve")(serve)
app.command("publish")(publish)
app.add_typer(keys_app, name="keys")
app.add_typer(device_app, name="device")
app.add_typer(signing_key_app, name="signing-key")


def main() -> None:
    app()
