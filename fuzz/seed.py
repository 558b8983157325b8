#!/usr/bin/env python3
"""Writes the fuzz targets' seeds into fuzz/corpus/<target>/ from the samples, the test fixtures
and small files of each shape the specifications write (docs/fuzzing.md). Run from the
repository's root after `cargo run --example workbooks -- sample`."""

import io
import os
import struct
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
ENV = "7a9e4a36-3c3f-4d7e-9a55-0b0e0f3b7c10"
USER = "0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5"


def seed(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def zipped(parts):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts:
            archive.writestr(name, data)
    return out.getvalue()


def record(kind, data=b""):
    head = bytes([kind]) if kind < 0x80 else bytes([(kind & 0x7F) | 0x80, kind >> 7])
    length, groups = len(data), b""
    while True:
        group, length = length & 0x7F, length >> 7
        groups += bytes([group | 0x80 if length else group])
        if not length:
            break
    return head + groups + data


def wide(text):
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def xlsb():
    workbook = record(0x83) + record(0x8F)
    workbook += record(0x9C, b"\0" * 4 + struct.pack("<I", 1) + wide("rId1") + wide("Users"))
    workbook += record(0x90) + record(0x84)
    strings = record(0x9F, struct.pack("<II", 1, 1)) + record(0x13, b"\0" + wide("envID")) + record(0xA0)
    sheet = record(0x81) + record(0x94, struct.pack("<IIII", 0, 2, 0, 2)) + record(0x91)
    cell = lambda column: struct.pack("<I", column) + b"\0" * 4
    for row, (env, user) in enumerate([(None, "userID"), (ENV, USER)]):
        sheet += record(0x00, struct.pack("<I", row) + b"\0" * 7 + (b"\x10" if row == 9 else b"\0") + b"\0" * 5)
        sheet += record(0x07, cell(0) + struct.pack("<I", 0)) if env is None else record(0x06, cell(0) + wide(env))
        sheet += record(0x06, cell(1) + wide(user))
    sheet += record(0x0B, cell(2) + bytes([0x2A, 0, 0]) + b"\0" * 8)
    sheet += record(0x92) + record(0xA1, b"\0" * 16) + record(0x82)
    rels = '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.bin"/></Relationships>'
    return zipped([("xl/_rels/workbook.bin.rels", rels), ("xl/workbook.bin", workbook),
                   ("xl/sharedStrings.bin", strings), ("xl/worksheets/sheet1.bin", sheet)])


def ods():
    row = lambda *cells: "<table:table-row>" + "".join(
        f'<table:table-cell office:value-type="string"><text:p>{c}</text:p></table:table-cell>' for c in cells) + "</table:table-row>"
    content = ('<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
               '<office:body><office:spreadsheet><table:table table:name="Users">'
               + row("envID", "userID") + row(ENV, USER)
               + '<table:table-row table:visibility="filter" table:number-rows-repeated="3"><table:table-cell table:number-columns-repeated="4"/></table:table-row>'
               '</table:table></office:spreadsheet></office:body></office:document-content>')
    return zipped([("mimetype", "application/vnd.oasis.opendocument.spreadsheet"), ("content.xml", content)])


def main():
    for expiry in ["2025-11-30T00:00:00.000Z", "8h", "+90m", "2d", "1h30m", "1h 30m", "2026-12-20 17:00",
                   "2026-12-20", "2026-12-20 17:00:00", "-1h", "+999999999h", "300000y", "366d",
                   "2026-12-20T17:00:00+05:30", "2026-12-20T17:00:00.123456789Z", "tomorrow", "UTC",
                   "America/New_York", "local", "50", "0.5", "2026-03-08 02:30"]:
        seed("expiry", "".join(c if c.isalnum() or c in "-._" else "_" for c in expiry) or "empty", expiry)
    for sample in sorted((ROOT / "samples").glob("*.csv")):
        seed("csv", sample.name, sample.read_bytes())
        seed("header", sample.name, sample.read_bytes().split(b"\n")[0])
        seed("resume", "results-" + sample.name, b"\0" + sample.read_bytes())
    seed("csv", "utf16.csv", "\ufeffenvID,userID\n".encode("utf-16-le"))
    seed("csv", "semicolons.csv", f"envID;userID;until\n{ENV};{USER};8h\n")
    seed("csv", "quoted.csv", f'envID,userID,note\n{ENV},{USER},"a ""quoted""\nnote"\n')
    for header in ["envID,userID,until", "environment,user,expiry,ticket", "env,username,until,status",
                   "envID,email,,,,", "user\u00a0ID,env", "row,environment_id,user_id,until,requested_until,status,http_status,can_bypass_mfa,bypass_mfa_enabled_until,attempts,error_code,error_message,completed_at"]:
        seed("header", header.replace(",", "_")[:40] or "empty", header)
    results = ("row,environment_id,user_id,until,requested_until,status,http_status,can_bypass_mfa,"
               "bypass_mfa_enabled_until,attempts,error_code,error_message,completed_at\n"
               f"2,{ENV},{USER},2026-12-02T07:00:00.000Z,8h,succeeded,200,true,2026-12-02T07:00:00.000Z,1,,,2026-12-01T23:00:01.000Z\n")
    seed("resume", "results", b"\0" + results.encode())
    seed("resume", "journal", b"\1" + results.encode())
    seed("resume", "manifest", b"\2" + b'{"run_id":"950e95f4-0fbd-435a-8670-0ec3ebb39d5e","tool_version":"0.1.0","api_url":"https://api.pingone.com/v1","simulated":false,"dry_run":false,"settings":{},"environments":[],"started_at":"2026-12-01T21:51:35Z","earlier_runs":[]}')
    workbook = ROOT / "samples" / "workbook.xlsx"
    if workbook.exists():
        seed("workbook", "sample.xlsx", b"\0" + workbook.read_bytes())
    seed("workbook", "legacy.xls", b"\2" + (ROOT / "tests" / "fixtures" / "legacy.xls").read_bytes())
    seed("workbook", "lookup.xlsb", b"\1" + xlsb())
    seed("workbook", "filtered.ods", b"\3" + ods())
    for name, answer in [
        ("bypass-full", '{"_links":{"self":{"href":"https://api.pingone.com/v1/environments/e/users/u/bypassMFA"}},"canBypassMFA":true,"bypassMFAEnabledUntil":"2025-11-30T00:00:00.000Z"}'),
        ("bypass-lean", '{"bypassMFAEnabledUntil":"2025-11-30T00:00:00+01:00"}'),
        ("error-details", '{"id":"5f1c","code":"INVALID_DATA","message":"The request could not be completed.","details":[{"code":"INVALID_VALUE","target":"bypassMFAEnabledUntil","message":"must be in the future","innerError":{"rangeMaximumValue":"2026-12-31"}}]}'),
        ("error-throttled", '{"id":"7","code":"REQUEST_LIMITED","message":"Too many requests","details":[{"code":"REQUEST_LIMITED","innerError":{"retryAfter":"2026-12-01T23:00:05Z","quotaLimit":100}}]}'),
        ("listing", '{"_links":{"next":{"href":"https://api.pingone.com/v1/environments/e/users?cursor=abc"}},"_embedded":{"users":[{"id":"u1","username":"ana","email":"ana@example.com"}],"populations":[{"id":"p","name":"Staff"}]},"count":1,"size":1}'),
        ("token", '{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","token_type":"Bearer","expires_in":3600,"scope":"p1:read:user"}'),
        ("oauth-error", '{"error":"invalid_client","error_description":"Request denied: Unsupported authentication method"}'),
        ("proxy-page", "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"),
    ]:
        seed("pingone_answers", name, answer)


if __name__ == "__main__":
    main()
