"""Every CLI's --help prints and exits 0: flags derived from declarations (TrainConfig, the policies)
must format."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import mnistlite.cli

COMMANDS = sorted(m.name for m in pkgutil.iter_modules(mnistlite.cli.__path__)
                  if hasattr(importlib.import_module(f"mnistlite.cli.{m.name}"), "main"))


@pytest.mark.parametrize("name", COMMANDS)
def test_help_exits_0_and_names_the_flags(name, capsys):
    module = importlib.import_module(f"mnistlite.cli.{name}")
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_policy_flags_come_from_the_policies(capsys):
    from mnistlite.cli import evaluate, monitor

    for module, flags in ((evaluate, ("--max-drop", "--max-group-drop", "--max-reject-rise")),
                          (monitor, ("--max-accuracy-drop", "--max-age-days", "--max-bad-fraction"))):
        with pytest.raises(SystemExit):
            module.main(["--help"])
        out = capsys.readouterr().out
        assert all(f in out for f in flags) and "(default " in out
