"""`parex-lsp run --junit FILE`: the result as JUnit XML, the dialect CI servers read (Jenkins' junit-10.xsd):
one testsuite for the run, one testcase per task; a failure carries its reason code, reason and output tail;
skipped and cancelled tasks are `skipped` with their reason."""

from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from parex_lsp.contract import TaskStatus
from parex_lsp.engine.result import RunResult

# Characters XML 1.0 cannot hold (task output may carry terminal escapes or NULs): shown as \xNN instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(s: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def _secs(ms: int | float) -> str:
    return f"{ms / 1000:.3f}"


def junit_xml(result: RunResult, plan_source: str | None, tails: dict[str, list[str]],
              started: float | None = None) -> bytes:
    name = Path(plan_source).name if plan_source else "parex"
    counts = result.counts()
    failures = counts.get(TaskStatus.FAILED, 0)
    skipped = counts.get(TaskStatus.SKIPPED, 0) + counts.get(TaskStatus.CANCELLED, 0)
    total = len(result.tasks)
    root = ET.Element("testsuites", name="parex", tests=str(total), failures=str(failures), errors="0",
                      time=_secs(result.wall_ms))
    suite = ET.SubElement(root, "testsuite", name=_text(name), tests=str(total), failures=str(failures), errors="0",
                          skipped=str(skipped), time=_secs(result.wall_ms), id=result.run_id,
                          timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started or time.time())),
                          hostname=socket.gethostname())
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="runId", value=result.run_id)
    ET.SubElement(props, "property", name="plan", value=_text(plan_source or "(inline)"))
    ET.SubElement(props, "property", name="status", value=result.status)
    for t in result.tasks:
        case = ET.SubElement(suite, "testcase", name=_text(t.id), classname=_text(name), time=_secs(t.duration_ms))
        tail = "\n".join(tails.get(t.id, []))
        if t.status == TaskStatus.FAILED:
            failure = ET.SubElement(case, "failure", type=t.code or "failed", message=_text(t.error or "failed"))
            failure.text = _text(tail)
        elif t.status in (TaskStatus.SKIPPED, TaskStatus.CANCELLED):
            ET.SubElement(case, "skipped", type=t.status, message=_text(t.error or t.status))
        notes = [f"succeeded in run {t.reused_from}; not run again"] if t.reused_from else []
        if t.log_path is not None:
            notes.append(f"log: {t.log_path}")
        if notes:
            ET.SubElement(case, "system-out").text = _text("\n".join(notes))
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def write_junit(path: Path, xml: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(xml)
    tmp.replace(path)  # a reader never sees half a file
