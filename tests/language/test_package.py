"""bot.language as a package: importing it loads nothing; warm_up loads the lazy resources."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_heavy_library_and_warm_up_loads_them() -> None:
    code = (
        "import sys, bot.language.segments, bot.language.details, bot.language.morph;"
        "heavy = ('pymorphy3', 'usaddress', 'phonenumbers', 'number_parser');"
        "print(sorted(m for m in heavy if m in sys.modules));"
        "import bot.language; bot.language.warm_up();"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "['number_parser', 'phonenumbers', 'pymorphy3', 'usaddress']"
