#!/usr/bin/env python3
"""The files made to hurt of issue 19, full size, each run through the binaries given (a dry run,
as an admin would check a file first): exit code, wall time and peak memory per file.
Usage: benches/hostile_files.py BINARY [BINARY...]   (needs GNU time, /usr/bin/time)
HOSTILE_ONLY=part-of-a-name runs only the files whose names hold it (all are still written).
Each run is capped at 8 GiB of address space and 300 s, so that a file that would take the
machine down is reported instead."""

import os
import subprocess
import sys
import tempfile
import zipfile

ENV = "7a9e4a36-3c3f-4d7e-9a55-0b0e0f3b7c10"
USER = "0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5"
XLSX_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Users" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
}
SHEET_HEAD = '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>envID</t></is></c><c r="B1" t="inlineStr"><is><t>userID</t></is></c></row>'
SHEET_TAIL = "</sheetData></worksheet>"


def streamed(archive, name, head, piece, times, tail):
    with archive.open(name, "w", force_zip64=True) as part:
        part.write(head.encode())
        chunk = (piece * (1 << 20 // max(1, len(piece)) or 1)).encode()
        per_chunk = len(chunk) // len(piece.encode())
        for _ in range(times // per_chunk):
            part.write(chunk)
        part.write((piece * (times % per_chunk)).encode())
        part.write(tail.encode())


def xlsx(path, sheet=None, strings=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in XLSX_PARTS.items():
            archive.writestr(name, text)
        if sheet:
            streamed(archive, "xl/worksheets/sheet1.xml", *sheet)
        else:
            archive.writestr("xl/worksheets/sheet1.xml", SHEET_HEAD + SHEET_TAIL)
        if strings:
            streamed(archive, "xl/sharedStrings.xml", *strings)


def files(folder):
    made = []
    path = os.path.join(folder, "column-FXSHRXW.xlsx")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in XLSX_PARTS.items():
            archive.writestr(name, text)
        archive.writestr("xl/worksheets/sheet1.xml", SHEET_HEAD + f'<row r="2"><c r="A2" t="inlineStr"><is><t>{ENV}</t></is></c><c r="B2" t="inlineStr"><is><t>{USER}</t></is></c><c r="FXSHRXW3" t="inlineStr"><is><t>x</t></is></c></row>' + SHEET_TAIL)
    made.append(path)
    path = os.path.join(folder, "string-2GiB.xlsx")
    xlsx(path, strings=('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>', "A", 2 << 30, "</t></si></sst>"))
    made.append(path)
    path = os.path.join(folder, "strings-60M.xlsx")
    xlsx(path, strings=('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">', "<si><t>x</t></si>", 60_000_000, "</sst>"))
    made.append(path)
    path = os.path.join(folder, "blank-rows-2GiB.xlsx")
    xlsx(path, sheet=(SHEET_HEAD, "<row/>", (2 << 30) // 6, SHEET_TAIL))
    made.append(path)
    manifest = '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    head = ('<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet><table:table table:name="Users">'
            f'<table:table-row><table:table-cell office:value-type="string"><text:p>envID</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>userID</text:p></table:table-cell></table:table-row>'
            f'<table:table-row><table:table-cell office:value-type="string"><text:p>{ENV}</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>{USER}</text:p></table:table-cell></table:table-row>')
    tail = "</table:table></office:spreadsheet></office:body></office:document-content>"
    for name, row, times in [
        # Rows of values past Excel's last row: calamine caps them and drops the rest.
        ("rows-past-the-last.ods", f'<table:table-row table:number-rows-repeated="3"><table:table-cell office:value-type="string"><text:p>{ENV}</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>{USER}</text:p></table:table-cell></table:table-row>', 400_000),
        # Rows of one value repeated past Excel's last column: calamine warns for each row and
        # lays out 16,384 cells of each.
        ("columns-past-the-last.ods", '<table:table-row><table:table-cell office:value-type="float" office:value="1" table:number-columns-repeated="20000"/></table:table-row>', 4_000),
    ]:
        path = os.path.join(folder, name)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            archive.writestr("META-INF/manifest.xml", manifest)
            streamed(archive, "content.xml", head, row, times, tail)
        made.append(path)
    path = os.path.join(folder, "stray-IV65536.xls")
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    subprocess.run(["cargo", "run", "--quiet", "--example", "workbooks", "--", "stray-xls", path], cwd=root, check=True)
    made.append(path)
    path = os.path.join(folder, "columns-100k.csv")
    with open(path, "w") as out:
        out.write(",".join(["envID", "userID"] + [f"c{i}" for i in range(100_000)]) + "\n")
        out.write(f"{ENV},{USER}\n")
    made.append(path)
    path = os.path.join(folder, "header-300MB.csv")
    with open(path, "w") as out:
        out.write("envID,userID,")
        for _ in range(300):
            out.write("x" * (1 << 20))
        out.write(f"\n{ENV},{USER},x\n")
    made.append(path)
    return made


def run(binary, path, folder):
    timed = os.path.join(folder, "time")
    # timeout kills the binary itself (killing time would leave it running).
    command = ["/usr/bin/time", "-f", "%M %e", "-o", timed, "timeout", "-s", "KILL", "300", binary, "run", path, "--dry-run",
               "--until", "8h", "--progress", "never", "--overwrite",
               "-o", os.path.join(folder, "results.csv")]
    limit = "ulimit -v 8388608; exec " + " ".join(f"'{part}'" for part in command)
    try:
        finished = subprocess.run(["bash", "-c", limit], capture_output=True, timeout=330)
        code = "killed at 300 s" if finished.returncode == 137 else finished.returncode
        lines = finished.stderr.decode(errors="replace").strip().splitlines()
        said = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else "")
    except subprocess.TimeoutExpired:
        return "timeout", "300+", "?", ""
    try:
        rss, seconds = open(timed).read().split()[-2:]
    except (OSError, ValueError):
        rss, seconds = "?", "?"
    return code, seconds, f"{int(rss) / 1024:.0f} MiB" if rss.isdigit() else rss, said[:160]


def main():
    binaries = sys.argv[1:]
    only = os.environ.get("HOSTILE_ONLY", "")
    with tempfile.TemporaryDirectory() as folder:
        for path in files(folder):
            if only not in os.path.basename(path):
                continue
            size = os.path.getsize(path)
            for binary in binaries:
                code, seconds, rss, said = run(binary, path, folder)
                print(f"{os.path.basename(path)} ({size / 1024:.1f} KiB) {binary}: exit {code}, {seconds} s, peak {rss}; {said}")
        for binary in binaries:
            sample = os.path.join(os.path.dirname(__file__), "..", "samples", "outage.csv")
            finished = subprocess.run([binary, "run", sample, "--dry-run", "--max-window", "300000y",
                                       "--until", "8h", "--progress", "never", "-o", os.path.join(folder, "r.csv"), "--overwrite"],
                                      capture_output=True)
            print(f"--max-window 300000y {binary}: exit {finished.returncode}")


if __name__ == "__main__":
    main()
