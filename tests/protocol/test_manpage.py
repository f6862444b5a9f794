"""docs/mqd.1 documents what the binary does: every option with its default,
the version, and it renders without a warning."""
import os
import re
import shutil
import subprocess

import pytest

from mqd_harness import help_options, run_mqd

MAN_PAGE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "mqd.1")
# mqd-cli's page: test_cli_client.py checks what it says
CLI_MAN_PAGE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "mqd-cli.1")
SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION FILE", "PROTOCOL",
            "LIMITS", "SIGNALS", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"]


def plain(roff):
    """Roff source as text: font escapes dropped, \\- as -, quotes of macro
    arguments dropped."""
    text = re.sub(r"\\f[BIRP]", "", roff).replace("\\-", "-")
    return text.replace('"', "")


def sections():
    """{section name: its source lines}."""
    found, name = {}, None
    for line in open(MAN_PAGE).read().splitlines():
        if line.startswith(".SH "):
            name = line[4:].strip('"')
            found[name] = []
        elif name:
            found[name].append(line)
    return found


def option_entries():
    """{option as tagged in OPTIONS: the text of its paragraph}, the short and
    long forms of one entry sharing the paragraph."""
    lines = sections()["OPTIONS"]
    entries = {}
    for i, line in enumerate(lines):
        if line != ".TP":
            continue
        body = []
        for following in lines[i + 2:]:
            if following == ".TP":
                break
            body.append(following)
        tag = plain(lines[i + 1])
        for option in re.findall(r"(?<![\w-])--?[A-Za-z][a-z-]*", tag):
            entries[option] = " ".join(plain(l) for l in body if not l.startswith(".TP"))
    return entries


def test_every_section_is_there_in_order():
    assert [s for s in sections() if s in SECTIONS] == SECTIONS


def test_every_option_of_help_is_in_the_man_page_and_no_other():
    _, out, _ = run_mqd("--help")
    listed = set(help_options()) | set(re.findall(r"^  (-[A-Za-z]),", out, re.M))
    assert {"-h", "-V", "--port", "--config", "--log-file"} <= listed
    assert set(option_entries()) == listed


def test_every_default_of_help_is_in_the_man_page():
    entries = option_entries()
    defaulted = {o: d for o, d in help_options().items() if d is not None}
    assert len(defaulted) >= 8
    for option, default in defaulted.items():
        assert f"Default: {default}." in entries[option], option


def test_the_man_page_has_the_version_of_the_binary():
    _, out, _ = run_mqd("--version")
    version = out.split()[1]
    header = open(MAN_PAGE).readline()
    assert header.startswith(".TH MQD 1 ") and f'"mqd {version}"' in header


@pytest.mark.parametrize("page", [MAN_PAGE, CLI_MAN_PAGE])
def test_the_man_page_renders_without_warnings(page):
    groff = shutil.which("groff")
    assert groff, "groff is missing: ./dev.sh installs groff-base"
    p = subprocess.run([groff, "-man", "-ww", "-z", page], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0 and p.stderr == ""
