"""An independent implementation of the gateway's search rule, for tests.

The Unicode Standard's canonical caseless match (D145) with CPython's own
Unicode tables: NFD(casefold(NFD(x))), where str.casefold() is full case
folding (CaseFolding.txt statuses C and F). A needle matches a word when its
folded form is a substring of the folded word or the folded definition.

Reads one JSON request per line on stdin, answers one JSON line on stdout:
  {"op": "match", "needle": s, "words": [[word, definition], ...]} -> [bool, ...]
  {"op": "fold", "texts": [s, ...]} -> [folded, ...]
  {"op": "table"} -> {"assigned": [[first, last], ...], "folds": {cp: folded}}
      every code point assigned in CPython's Unicode version (no surrogates),
      and the folded form of each one that folding or NFD changes.
Every answer is {"unicode": version, "result": ...}.
"""
import json
import sys
import unicodedata


def fold(text):
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


def table():
    assigned, folds, start = [], {}, None
    for cp in range(0x110000):
        ok = unicodedata.category(chr(cp)) not in ("Cn", "Cs")
        if ok and start is None:
            start = cp
        if not ok and start is not None:
            assigned.append([start, cp - 1])
            start = None
        if ok and fold(chr(cp)) != chr(cp):
            folds[cp] = fold(chr(cp))
    if start is not None:
        assigned.append([start, 0x10FFFF])
    return {"assigned": assigned, "folds": folds}


def answer(req):
    op = req["op"]
    if op == "match":
        needle = fold(req["needle"])
        return [needle in fold(w) or needle in fold(d) for w, d in req["words"]]
    if op == "fold":
        return [fold(t) for t in req["texts"]]
    if op == "table":
        return table()
    raise ValueError("unknown op " + repr(op))


for line in sys.stdin:
    reply = {"unicode": unicodedata.unidata_version, "result": answer(json.loads(line))}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
