"""The revision matrix: every recorded behaviour (rows) across the SUTs (columns), the cells
that differ from the revision before them marked, each revision's defects named, and for
each row the command that reproduces it. Read from the records (records/<name>.toml), so it
costs no boot: `harness matrix` writes docs/revision-matrix.md and .html.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from ..checks import records
from ..errors import HarnessError

NOT_APPLICABLE = "n/a"
NOT_RECORDED = "not recorded"
NOT_OBSERVED = "—"             # the entry is there, the field is not one of its kind (a crash has no dom0_scmi)


@dataclass
class Row:
    section: str
    key: str
    field: str
    cells: dict[str, object]       # SUT name -> value, NOT_APPLICABLE or NOT_RECORDED
    changed: set[str]              # SUTs whose cell differs from the column before (among recorded ones)

    @property
    def differs(self) -> bool:
        return bool(self.changed)

    def command(self) -> str:
        reader = records.READERS[self.section].removesuffix(".py")
        if self.section in ("fault", "bad-config"):        # keyed by scenario: part of the test id
            return f'pytest -m boot --sut SUT -k "{reader} and {self.key}"'
        if self.section == "broken":
            return f"pytest -m boot --sut SUT -k {reader}"
        return f"pytest -m boot --sut SUT --board={self.key} -k {reader}"     # keyed by board


def applies(sut, section: str, key: str, board_name: str) -> bool:
    """Can sut run the test that reads [section.key]?"""
    from ..plan.scenario import load_scenario
    if section in ("fault", "bad-config"):
        try:
            sc = load_scenario(key)
        except HarnessError:
            return False
        return sc.unmet(sut) is None and (section == "fault" or bool(sc.expect_misconfig))
    if section.startswith("assign"):
        return sut.profile.multiagent and key == board_name
    if section == "xl-dtdev":       # run on the multi-agent scenarios with an xl guest
        return key == board_name and sut.profile.multiagent
    if section == "broken":
        return False                # a reviewer's entry: a SUT without one is not missing it
    return True


def tonight(paths: list[Path]) -> dict[tuple[str, str, str], str]:
    """What a night's JUnit files (read as `harness report` reads them) say of the recorded
    behaviours: (SUT, section, key) -> "held", or the first line of the failure (a boot that
    no longer does as recorded)."""
    from .report import load_night
    out: dict[tuple[str, str, str], str] = {}
    for r in load_night(paths).tests.values():
        for value in r.records:
            k = re.search(r"\[([\w-]+)\.([\w.-]+)\]", value)
            if not (r.sut and k):
                continue
            key = (r.sut, k.group(1), k.group(2))
            if r.outcome in ("failed", "error"):
                out[key] = r.message[:160] or r.outcome
            else:
                out.setdefault(key, "held")
    return out


def build(suts: list, board_name: str = "qemu-virt") -> tuple[list[Row], dict[str, list[tuple[str, str]]]]:
    """(rows, defects): defects maps a SUT to its (entry, defect) pairs."""
    recs = {s.name: records.load(records.sut_record(s)) for s in suts}
    keys = sorted({(sec, key) for r in recs.values() for sec, entries in r.items() for key in entries})
    rows, defects = [], {s.name: [] for s in suts}
    for section, key in keys:
        fields = sorted({f for r in recs.values() for f in r.get(section, {}).get(key, {})
                         if f not in records.HUMAN}, key=_field_order)
        for field in fields:
            cells = {}
            for s in suts:
                entry = recs[s.name].get(section, {}).get(key)
                if entry is None:
                    cells[s.name] = NOT_RECORDED if applies(s, section, key, board_name) else NOT_APPLICABLE
                else:
                    cells[s.name] = entry.get(field, NOT_OBSERVED)
            rows.append(Row(section, key, field, cells, _changed(cells, [s.name for s in suts])))
        for s in suts:
            entry = recs[s.name].get(section, {}).get(key) or {}
            if entry.get("defect"):
                where = f" ({entry['defect_line']})" if entry.get("defect_line") else ""
                defects[s.name].append((f"{section}.{key}", entry["defect"] + where))
    return rows, defects


def _field_order(f: str):
    return (f == "xen_lines", f)


def _changed(cells: dict, order: list[str]) -> set[str]:
    out, before = set(), None
    for name in order:
        v = cells[name]
        if v in (NOT_APPLICABLE, NOT_RECORDED, NOT_OBSERVED):
            continue
        if before is not None and v != before:
            out.add(name)
        before = v
    return out


def _text(v) -> list[str]:
    if isinstance(v, bool):
        return ["yes" if v else "no"]
    if isinstance(v, list):
        return [str(x) for x in v] or ["(none)"]
    return [str(v)]


def markdown(rows: list[Row], defects: dict, suts: list, night: dict | None = None) -> str:
    names = [s.name for s in suts]
    out = ["# Revision matrix: what each revision of Xen's SCMI support did under this harness", "",
           "Generated by `harness matrix` from the records (`records/<name>.toml`, written by "
           "`pytest -m boot --sut NAME --record` from real boots on QEMU; see `docs/records.md`). "
           "A cell in **bold** with ◆ differs from the revision to its left; `n/a`: the SUT cannot run "
           "that test (it lacks the capability); `not recorded`: it could, but its record lacks it. "
           "To reproduce a row, put the column's SUT into its command.", "",
           "| SUT | record | profile | what it is |", "| --- | --- | --- | --- |"]
    for s in suts:
        out.append(f"| `{s.name}` | `records/{records.sut_record(s)}.toml` | `{s.profile.name}` | {_md(s.description)} |")
    out += ["", f"{sum(r.differs for r in rows)} of {len(rows)} recorded behaviours differ between revisions.", ""]
    if night is not None:
        broke = {k: v for k, v in night.items() if v != "held"}
        out += [f"Tonight's boots checked {len(night)} recorded entries: {len(night) - len(broke)} held"
                + (", these did not (marked ✗ below):" if broke else "."), ""]
        out += [f"- `{sut}` [{sec}.{key}]: {_md(msg)}" for (sut, sec, key), msg in sorted(broke.items())]
        out += [""] if broke else []
    out += ["| behaviour | " + " | ".join(f"`{n}`" for n in names) + " | reproduce |",
            "| --- |" + " --- |" * (len(names) + 1)]
    for r in rows:
        cells = []
        for n in names:
            text = "<br>".join(_md(x) if len(x) < 60 else f"`{_md(x)}`" for x in _text(r.cells[n]))
            if night and night.get((n, r.section, r.key), "held") != "held":
                text = f"✗ {text}"
            cells.append(f"**{text}** ◆" if n in r.changed else text)
        mark = " ≠" if r.differs else ""
        out.append(f"| {r.section} `{r.key}`: {r.field}{mark} | " + " | ".join(cells) + f" | `{r.command()}` |")
    out += ["", "## Defects", "", "What a reviewer of the series would call a bug, named in each record "
            "(JUnit `sut_defect` of the test that reads it).", ""]
    for n in names:
        if defects[n]:
            out.append(f"### `{n}`")
            out += [f"- `{where}`: {_md(text)}" for where, text in defects[n]]
            out.append("")
    if not any(defects.values()):
        out.append("(none recorded)")
    return "\n".join(out).rstrip() + "\n"


def _md(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def page(rows: list[Row], defects: dict, suts: list) -> str:
    """One HTML page, no scripts or external files: the table a person would rather look at."""
    names = [s.name for s in suts]
    e = html.escape
    head = "".join(f"<th>{e(n)}<br><small>{e(s.profile.name)}</small></th>" for n, s in zip(names, suts))
    body = []
    for r in rows:
        tds = []
        for n in names:
            v = r.cells[n]
            cls = "na" if v == NOT_APPLICABLE else "missing" if v == NOT_RECORDED else \
                  "changed" if n in r.changed else ""
            tds.append(f'<td class="{cls}">' + "<br>".join(f"<code>{e(x)}</code>" if len(x) > 20 else e(x)
                                                            for x in _text(v)) + "</td>")
        body.append(f'<tr class="{"differs" if r.differs else ""}"><th class="row">{e(r.section)} '
                    f'<b>{e(r.key)}</b><br>{e(r.field)}</th>{"".join(tds)}<td><code>{e(r.command())}</code></td></tr>')
    defect_html = "".join(f"<h3>{e(n)}</h3><ul>" + "".join(f"<li><code>{e(w)}</code>: {e(t)}</li>"
                                                              for w, t in defects[n]) + "</ul>"
                          for n in names if defects[n])
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Revision matrix</title><style>
body {{ font-family: sans-serif; margin: 1em; }} table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border: 1px solid #bbb; padding: 3px 5px; vertical-align: top; text-align: left; }}
th.row {{ font-weight: normal; white-space: nowrap; }} tr.differs th.row {{ border-left: 4px solid #c60; }}
td.changed {{ background: #ffe0b0; }} td.na {{ color: #999; background: #f4f4f4; }}
td.missing {{ background: #fcc; }} code {{ font-size: 11px; }}
</style></head><body>
<h1>What each revision of Xen's SCMI support did under this harness</h1>
<p>From the records (<code>records/&lt;name&gt;.toml</code>), written by <code>pytest --record</code> from real boots.
Orange: differs from the revision to its left. Grey: the SUT cannot run it. Red: not recorded.
{sum(r.differs for r in rows)} of {len(rows)} behaviours differ.</p>
<table><tr><th>behaviour</th>{head}<th>reproduce (put the SUT in)</th></tr>
{"".join(body)}
</table><h2>Defects</h2>{defect_html or "<p>none recorded</p>"}
</body></html>
"""


def write(out_dir: Path, sut_names: list[str] | None = None, board_name: str = "qemu-virt",
          junit: list[Path] | None = None) -> list[Path]:
    from ..images import sut as sutmod
    every = sutmod.load_suts()
    names = sut_names or [n for n in ORDER if n in every] + [n for n, s in every.items()
                                                              if s.shipped and n not in ORDER]
    unknown = [n for n in names if n not in every]
    if unknown:
        raise HarnessError(f"no SUT named {', '.join(unknown)}", field="--sut", fix="use one of " + ", ".join(every))
    suts = [every[n] for n in names]
    rows, defects = build(suts, board_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, page_path = out_dir / "revision-matrix.md", out_dir / "revision-matrix.html"
    md.write_text(markdown(rows, defects, suts, tonight(junit) if junit else None), encoding="utf-8")
    page_path.write_text(page(rows, defects, suts), encoding="utf-8")
    return [md, page_path]


# the columns, oldest multi-agent revision first, then the releases
ORDER = ("v5", "v10", "v11", "upstream-4.20", "upstream-4.22")
