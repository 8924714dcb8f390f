#!/usr/bin/env python3
"""Generates runtime/src/tokenizer/unicode_tables.rs: the character tables of the BERT tokenizer.

Run (needs the Hugging Face `tokenizers` Python package, the reference implementation):

    HF_HUB_OFFLINE=1 /work/refvenv/bin/python scripts/gen_unicode_tables.py

Why the tables are *measured* rather than read from a Unicode Character Database:
Hugging Face's Rust `tokenizers` mixes Unicode versions. `BertNormalizer` and
`BertPreTokenizer` classify characters with the `unicode_categories` crate (Unicode 8.0 tables,
and an *empty* "unassigned" (Cn) table, so clean_text removes only Cc/Cf/Co, never unassigned
code points), decompose with `unicode-normalization-alignments` (no decomposition added after
Unicode 12), and lowercase with Rust's `char::to_lowercase` (whatever Unicode version the wheel's
compiler had). Python's `unicodedata` is a single, different version. So this script asks the
installed `tokenizers` package about every code point (U+0000..U+10FFFF minus surrogates) and
writes down exactly what it does:

- CLEAN_REMOVE: chars that `BertNormalizer(clean_text=True)` deletes.
- WHITESPACE: chars `BertPreTokenizer` splits on (Rust `char::is_whitespace`); clean_text maps
  the ones it does not delete to ' '.
- PUNCTUATION: chars `BertPreTokenizer` isolates.
- CHINESE: chars `handle_chinese_chars` surrounds with spaces.
- NONSPACING_MARK: chars that strip_accents drops after NFD (only chars that NFD leaves alone
  can reach that filter; for the others the value is chosen to keep ranges long).
- COMBINING_CLASS: the canonical combining class NFD reorders by, measured by observing how
  `normalizers.NFD` reorders pairs of marks against marks of known class.
- DECOMPOSITION: canonical decompositions (one level; applied recursively they give exactly what
  `normalizers.NFD` produces). Hangul syllables are decomposed algorithmically, checked here.
- LOWERCASE: `normalizers.Lowercase` (Rust `char::to_lowercase`) as runs of (start, end, delta,
  stride); U+0130 (the only multi-char lowercase) is special-cased in the Rust code.

The script checks its own assumptions (e.g. every decomposition is canonically ordered and puts
no starter after a non-starter) and fails loudly if a new `tokenizers` release breaks them.
"""
import os
import sys
import unicodedata

import tokenizers
from tokenizers import normalizers, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "runtime", "src", "tokenizer", "unicode_tables.rs")

CPS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


def bert(clean=False, chinese=False, strip=False, lower=False):
    return normalizers.BertNormalizer(
        clean_text=clean, handle_chinese_chars=chinese, strip_accents=strip, lowercase=lower
    )


def ranges(cps):
    out = []
    for cp in sorted(cps):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def ranges_with_dont_care(member, dont_care):
    """Ranges covering every member, free to include or leave out don't-care code points."""
    out = []
    last_in = None  # last code point that is inside the current range
    for cp in CPS:
        if cp in member:
            if out and last_in is not None and all(
                c in dont_care or not (0 <= c < 0x110000) or (0xD800 <= c <= 0xDFFF)
                for c in range(last_in + 1, cp)
            ):
                out[-1][1] = cp
            else:
                out.append([cp, cp])
            last_in = cp
    return out


def main():
    nfd = normalizers.NFD()
    lower = normalizers.Lowercase()
    clean = bert(clean=True)
    chinese = bert(chinese=True)
    strip = bert(strip=True)
    pretok = pre_tokenizers.BertPreTokenizer()

    removed, clean_space, whitespace, punct, cjk, mn = set(), set(), set(), set(), set(), set()
    decomp, lowercase = {}, {}
    for cp in CPS:
        c = chr(cp)
        o = clean.normalize_str(c)
        if o == "":
            removed.add(cp)
        elif o != c:
            assert o == " ", (hex(cp), o)
            clean_space.add(cp)
        o = chinese.normalize_str(c)
        if o != c:
            assert o == " " + c + " ", (hex(cp), o)
            cjk.add(cp)
        d = nfd.normalize_str(c)
        if d != c:
            decomp[cp] = [ord(x) for x in d]
        elif strip.normalize_str(c) == "":
            mn.add(cp)
        lc = lower.normalize_str(c)
        if lc != c:
            lowercase[cp] = [ord(x) for x in lc]
        splits = pretok.pre_tokenize_str("a" + c + "a")
        if len(splits) == 3:
            assert splits[1][0] == c, (hex(cp), splits)
            punct.add(cp)
        elif len(splits) == 2:
            whitespace.add(cp)
        else:
            assert len(splits) == 1, (hex(cp), splits)

    assert clean_space | {0x20} == whitespace - removed, "clean_text's whitespace set changed"
    assert not (whitespace & punct)

    # ---- canonical combining classes, measured through NFD's reordering ----
    def nfd_cps(s):
        return [ord(x) for x in nfd.normalize_str(s)]

    def swaps(a, b):
        """NFD(a b) == b a, i.e. 0 < ccc(b) < ccc(a)."""
        if a == b:
            return False
        r = nfd_cps(chr(a) + chr(b))
        if r == [b, a]:
            return True
        assert r == [a, b], (hex(a), hex(b), r)
        return False

    acute, overlay = 0x0301, 0x0334  # ccc 230 and ccc 1 in every Unicode version
    stable = [cp for cp in CPS if cp not in decomp]
    nonstarters = [cp for cp in stable if swaps(acute, cp) or swaps(cp, overlay)]
    # Reference marks: for every class Python knows, one NFD-stable char of that class.
    refs = {}
    for cp in CPS:
        k = unicodedata.combining(chr(cp))
        if k and k not in refs and unicodedata.normalize("NFD", chr(cp)) == chr(cp) and cp in nonstarters:
            refs[k] = cp
    ref_list = sorted(refs.items())
    for (k1, r1), (k2, r2) in zip(ref_list, ref_list[1:]):
        assert swaps(r2, r1) and not swaps(r1, r2), ("reference order", k1, k2)
    ccc = {}
    for cp in nonstarters:
        lo, hi = 0, len(ref_list)  # first reference that does not sort before cp
        while lo < hi:
            mid = (lo + hi) // 2
            if swaps(cp, ref_list[mid][1]):
                lo = mid + 1
            else:
                hi = mid
        assert lo < len(ref_list), hex(cp)
        k, r = ref_list[lo]
        assert not swaps(r, cp) and not swaps(cp, r), ("class not among the references", hex(cp))
        ccc[cp] = k

    def cls(cp):
        return ccc.get(cp, 0)

    # ---- decompositions ----
    def hangul(cp):
        s = cp - 0xAC00
        if not 0 <= s < 11172:
            return None
        out = [0x1100 + s // 588, 0x1161 + (s % 588) // 28]
        if s % 28:
            out.append(0x11A7 + s % 28)
        return out

    single = {}
    for cp, full in decomp.items():
        h = hangul(cp)
        if h is not None:
            assert h == full, hex(cp)
            continue
        m = unicodedata.decomposition(chr(cp))
        assert m and not m.startswith("<"), ("no canonical mapping known to Python", hex(cp))
        parts = [int(x, 16) for x in m.split()]
        assert 1 <= len(parts) <= 2
        single[cp] = parts

    def expand(cp):
        if cp in single:
            return [x for p in single[cp] for x in expand(p)]
        return hangul(cp) or [cp]

    max_len = 0
    for cp, full in decomp.items():
        raw = expand(cp)
        assert raw == full, ("recursive expansion differs from NFD", hex(cp), raw, full)
        classes = [cls(x) for x in raw]
        seen_nonstarter = False
        for k in classes:
            if k:
                seen_nonstarter = True
            else:
                assert not seen_nonstarter, ("starter after a non-starter", hex(cp))
        nz = [k for k in classes if k]
        assert nz == sorted(nz), ("decomposition not canonically ordered", hex(cp))
        assert all(x not in decomp for x in raw)
        max_len = max(max_len, len(raw))
    assert max_len <= 4, max_len
    hangul_count = sum(1 for cp in decomp if hangul(cp) is not None)
    assert hangul_count == 11172

    # ---- lowercase ----
    special = {cp: v for cp, v in lowercase.items() if len(v) != 1}
    assert special == {0x130: [0x69, 0x307]}, special
    runs = []
    for cp in sorted(lowercase):
        if cp in special:
            continue
        d = lowercase[cp][0] - cp
        if runs:
            s, e, dd, st = runs[-1]
            if dd == d and ((st == 0 and cp - e in (1, 2)) or (st and cp - e == st)):
                runs[-1] = [s, cp, d, cp - e]
                continue
        runs.append([cp, cp, d, 0])
    for r in runs:
        if r[3] == 0:
            r[3] = 1

    # ---- non-spacing marks: only NFD-stable chars reach the filter ----
    mn_ranges = ranges_with_dont_care(mn, set(decomp))

    ccc_ranges = []
    for cp in sorted(ccc):
        if ccc_ranges and ccc_ranges[-1][1] == cp - 1 and ccc_ranges[-1][2] == ccc[cp]:
            ccc_ranges[-1][1] = cp
        else:
            ccc_ranges.append([cp, cp, ccc[cp]])

    # ---- write ----
    def fmt_pairs(name, rs, doc):
        body = ["(0x%X, 0x%X)" % (a, b) for a, b in rs]
        return "%s\npub(crate) static %s: &[(u32, u32)] = &[\n%s\n];\n" % (doc, name, wrap(body))

    def wrap(items, width=99):
        lines, cur = [], "    "
        for item in items:
            add = item + ","
            if len(cur) + len(add) + 1 > width and cur.strip():
                lines.append(cur.rstrip())
                cur = "    "
            cur += add + " "
        if cur.strip():
            lines.append(cur.rstrip())
        return "\n".join(lines)

    out = []
    out.append("// @generated by scripts/gen_unicode_tables.py -- do not edit by hand.\n")
    out.append(
        "// Measured from the Hugging Face `tokenizers` %s Python package (Python unicodedata %s\n"
        "// used only for one-level decomposition mappings and reference combining classes).\n"
        % (tokenizers.__version__, unicodedata.unidata_version)
    )
    out.append("// All ranges are inclusive and sorted; look-ups binary-search them.\n")
    out.append(fmt_pairs("CLEAN_REMOVE", ranges(removed),
                         "/// Deleted by `clean_text`: Cc, Cf and Co of Unicode 8.0 (minus \\t \\n \\r), U+FFFD."))
    out.append(fmt_pairs("WHITESPACE", ranges(whitespace),
                         "/// Rust `char::is_whitespace` (+ \\t \\n \\r): split on; mapped to ' ' by `clean_text`."))
    out.append(fmt_pairs("PUNCTUATION", ranges(punct),
                         "/// Isolated by `BertPreTokenizer`: ASCII punctuation and Unicode 8.0 P* categories."))
    out.append(fmt_pairs("CHINESE", ranges(cjk),
                         "/// Surrounded with spaces by `handle_chinese_chars`."))
    out.append(fmt_pairs("NONSPACING_MARK", mn_ranges,
                         "/// Dropped by `strip_accents` after NFD (Unicode 8.0 Mn)."))
    body = ["(0x%X, 0x%X, %d)" % tuple(r) for r in ccc_ranges]
    out.append("/// Canonical combining class of the non-starters, as NFD reorders them.\n"
               "pub(crate) static COMBINING_CLASS: &[(u32, u32, u8)] = &[\n%s\n];\n" % wrap(body))
    entries = []
    for cp in sorted(single):
        parts = single[cp] + [0] * (2 - len(single[cp]))
        entries.append("0x%X" % ((cp << 42) | (parts[0] << 21) | parts[1]))
    out.append("/// One-level canonical decompositions, packed `code point << 42 | first << 21 | second`\n"
               "/// (`second` 0 for singletons), sorted; apply recursively. Hangul is algorithmic.\n"
               "pub(crate) static DECOMPOSITION: &[u64] = &[\n%s\n];\n" % wrap(entries))
    body = ["(0x%X, 0x%X, %d, %d)" % tuple(r) for r in runs]
    out.append("/// Lowercase as runs `(start, end, delta, stride)`: code points `start + k * stride` up to\n"
               "/// `end` map to `cp + delta`. U+0130 (lowercases to two chars) is handled in code.\n"
               "pub(crate) static LOWERCASE: &[(u32, u32, i32, u8)] = &[\n%s\n];\n" % wrap(body))
    text = "\n".join(out)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s (%d bytes): remove %d ranges, whitespace %d, punct %d, chinese %d, mn %d, "
          "ccc %d, decomposition %d, lowercase %d runs" % (
              OUT, len(text), len(ranges(removed)), len(ranges(whitespace)), len(ranges(punct)),
              len(ranges(cjk)), len(mn_ranges), len(ccc_ranges), len(single), len(runs)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
