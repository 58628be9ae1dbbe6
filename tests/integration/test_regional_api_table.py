"""The README's "Every API key in regional mode" table cannot drift from the
code: every API key protocol/api.c knows has exactly one row, with api.c's
name, and the row's kind is routing/regional_api.c's decision for the key (a
key that table does not list is trimmed). Runs without a build or a cluster.
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECTION = "### Every API key in regional mode"
KINDS = {"split", "metadata", "cluster", "versions", "coordinator", "keys", "listing", "find", "configs", "any", "sasl",
         "trimmed"}


def readme_table():
    """{key: (name, kind)} from the README table's rows `| key | name | kind | ... |`."""
    text = (ROOT / "README.md").read_text()
    assert SECTION in text, f"README has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in body.splitlines():
        m = re.match(r"^\|\s*(\d+)\s*\|\s*([A-Za-z]+)\s*\|\s*`?([a-z]+)`?\s*\|", line)
        if not m:
            continue
        key = int(m.group(1))
        assert key not in rows, f"README lists API key {key} twice"
        rows[key] = (m.group(2), m.group(3))
    return rows


def api_c_keys():
    """{key: name} of every API protocol/api.c knows."""
    text = (ROOT / "protocol" / "api.c").read_text()
    keys = {int(k): n for k, n in re.findall(r"\b(?:API|DECODED)\((\d+),\s*\"([A-Za-z]+)\"", text)}
    assert len(keys) > 90, f"parsed only {len(keys)} API keys from protocol/api.c"
    return keys


def regional_kinds():
    """{key: kind} of routing/regional_api.c's table (a key not in it is trimmed)."""
    text = (ROOT / "routing" / "regional_api.c").read_text()
    table = text.split("kr_rapis[] = {", 1)[1].split("};", 1)[0]
    kinds = {int(k): v.lower() for k, v in re.findall(r"\[(\d+)\]\s*=\s*KR_RAPI_([A-Z]+)", table)}
    assert kinds, "parsed no entry of routing/regional_api.c's table"
    return kinds


def test_the_readme_table_lists_every_api_key_the_codec_knows_with_its_name():
    rows, keys = readme_table(), api_c_keys()
    missing = sorted(set(keys) - set(rows))
    extra = sorted(set(rows) - set(keys))
    assert not missing, f"API keys protocol/api.c knows but the README table does not list: {missing}"
    assert not extra, f"README rows for API keys protocol/api.c does not know: {extra}"
    wrong = {k: (rows[k][0], n) for k, n in keys.items() if rows[k][0] != n}
    assert not wrong, f"README names differ from protocol/api.c's (README, api.c): {wrong}"


def test_each_rows_kind_is_what_the_code_decides_for_the_key():
    rows, code = readme_table(), regional_kinds()
    for key, (name, kind) in rows.items():
        assert kind in KINDS, f"README row {key} {name}: unknown kind {kind!r}"
    differ = {k: (kind, code.get(k, "trimmed")) for k, (_, kind) in rows.items() if kind != code.get(k, "trimmed")}
    assert not differ, f"README kind differs from routing/regional_api.c (README, code): {differ}"
