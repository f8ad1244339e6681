"""JUnit XML, the report format CI systems (GitLab, Jenkins, GitHub test reporters) read.

There is no formal standard; this follows the common subset documented by Jenkins' JUnit
plugin and GitLab: ``testsuites > testsuite > testcase`` with ``failure`` (a check that
failed) or ``error`` (a check that could not run) and ``system-out``. Built with
``xml.etree.ElementTree``, which escapes text and attributes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from quotatool.report.text import printable, rfc3339

__all__ = ["JunitCase", "render_junit"]


@dataclass(frozen=True, slots=True)
class JunitCase:
    """One test case: one check of one account."""

    classname: str
    """Groups the cases of one account (the account name)."""
    name: str
    """What was checked (``storage quota``, ``folder INBOX``, ``scan``)."""
    failure: tuple[str, str] | None = None
    """``(type, message)`` when the check failed (WARNING, CRITICAL)."""
    error: str | None = None
    """Message when the check could not run (UNKNOWN)."""
    output: str = ""
    """Text for ``system-out`` (the status line)."""


def _clean(text: str) -> str:
    # XML 1.0 forbids most control characters even escaped; printable() replaces them.
    return printable(text)


def render_junit(suite: str, cases: Sequence[JunitCase], *, timestamp: int) -> str:
    """Return one ``testsuites`` document with one suite holding ``cases``."""
    failures = sum(1 for c in cases if c.failure is not None)
    errors = sum(1 for c in cases if c.error is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors)}
    root = ET.Element("testsuites", {"name": suite, **counts})
    node = ET.SubElement(
        root,
        "testsuite",
        {"name": suite, **counts, "skipped": "0", "timestamp": rfc3339(timestamp)[:-1]},
    )
    for case in cases:
        element = ET.SubElement(
            node, "testcase", {"classname": _clean(case.classname), "name": _clean(case.name)}
        )
        if case.failure is not None:
            kind, message = case.failure
            failure = ET.SubElement(element, "failure", {"type": kind, "message": _clean(message)})
            failure.text = _clean(message)
        if case.error is not None:
            error = ET.SubElement(
                element, "error", {"type": "UNKNOWN", "message": _clean(case.error)}
            )
            error.text = _clean(case.error)
        if case.output:
            ET.SubElement(element, "system-out").text = _clean(case.output)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
