"""The README's quick-start commands are the ones CI runs and the code supports."""

import re

from tests.helpers import REPO

README = (REPO / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert command in README


def test_readme_commands_name_real_subcommands():
    from ganplify.cli import build_parser

    known = set(build_parser()._subparsers._group_actions[0].choices)
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", README, flags=re.S))
    used = set(re.findall(r"^ganplify ([a-z-]+)", blocks, flags=re.M))
    assert used and used <= known, used - known


def test_every_figure_has_a_caption():
    from ganplify.figures import FIGURES

    for name in FIGURES:
        caption = REPO / "workflow" / "report" / f"{name}.rst"
        assert caption.is_file() and caption.read_text().strip(), name
