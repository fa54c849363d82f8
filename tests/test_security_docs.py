"""docs/security.md cannot claim a protection no test proves: every test it names exists, and
every ASVS requirement it marks met names one."""

from __future__ import annotations

import re

from tests.processes import ROOT

SECURITY_DOC = ROOT / "docs" / "security.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
ASVS_ROW = re.compile(r"^\| (V\d+\.\d+\.\d+) \| [^|]+ \| (met|partly|not met|n/a) \| [^|]+ \| (.*) \|$", re.M)


DEFINITION = re.compile(r"^def (test_\w+)|^(test_\w+) = ", re.M)


def defined_tests(path: str) -> set[str]:
    """Test names a module defines: functions, and names a generated test is assigned to."""
    return {name for pair in DEFINITION.findall((ROOT / path).read_text()) for name in pair if name}


def test_every_test_the_security_doc_names_exists():
    text = SECURITY_DOC.read_text()
    references = REFERENCE.findall(text)
    missing = [f"{path}::{name}" for path, name in references if name not in defined_tests(path)]

    assert len(references) > 100
    assert missing == []


def test_every_asvs_requirement_marked_met_names_a_test_or_a_make_target():
    rows = ASVS_ROW.findall(SECURITY_DOC.read_text())
    unproved = [
        requirement
        for requirement, status, proof in rows
        if status == "met" and not (REFERENCE.search(proof) or "`make " in proof)
    ]

    assert len(rows) == 173  # every Level 2 requirement of V2, V3, V4, V5, V7, V8, V13, V14
    assert unproved == []
