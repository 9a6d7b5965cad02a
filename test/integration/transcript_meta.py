"""transcript_meta.py - the meta command cases of it_transcript.py (mg,
ms, md, ma, mn, me; normal and malformed), appended to CASES by
transcript_cases.py. Names start with "meta " (TRANSCRIPT_FILTER=^meta).
"""
from transcript_cases import Case, MB

BIG = 1000000000000              # a cas no item has yet (C mismatch)
NO_TOKEN = ("kumo keeps no record of a recache token handed out, so a "
            "later fetch gets no Z")


def ms(key, value, flags=b""):
    """An ms request (flags: the flag words after the length)."""
    sep = b" " if flags else b""
    return b"ms %s %d%s%s\r\n%s\r\n" % (key, len(value), sep, flags, value)


META_CASES = [
    # ---- mg ----
    Case("meta mg miss", b"mg foo\r\n"),
    Case("meta mg miss v", b"mg foo v\r\n"),
    Case("meta mg miss O k", b"mg miss O9 k\r\n"),
    Case("meta mg miss s t c f v", b"mg foo s t c f v\r\n"),
    Case("meta mg miss q hidden", b"mg foo q v\r\nmn\r\n"),
    Case("meta mg hit v", ms(b"foo", b"bar") + b"mg foo v\r\n"),
    Case("meta mg hit HD", ms(b"foo", b"bar") + b"mg foo\r\n"),
    Case("meta mg flags in request order",
         ms(b"foo", b"bar", b"F5") + b"mg foo k v c f s t O123\r\n"),
    Case("meta mg s f without v", ms(b"foo", b"bar", b"F9") + b"mg foo s f\r\n"),
    Case("meta mg hit q shown", ms(b"foo", b"bar") + b"mg foo q v k\r\nmn\r\n"),
    Case("meta mg h l first fetch", ms(b"foo", b"x") + b"mg foo h l\r\n"),
    Case("meta mg h l second fetch",
         ms(b"foo", b"x") + b"mg foo v\r\nmg foo h l\r\n",
         known="kumo keeps no access history: h is always h0"),
    Case("meta mg u", ms(b"foo", b"x") + b"mg foo u v\r\n"),
    Case("meta mg flag with argument ignored", ms(b"foo", b"x") + b"mg foo vx sss\r\n"),
    Case("meta mg P L ignored", ms(b"foo", b"x") + b"mg foo P L v\r\n"),
    Case("meta mg t without expiry", ms(b"foo", b"x") + b"mg foo t\r\n"),
    Case("meta mg t with expiry", ms(b"foo", b"x", b"T30") + b"mg foo t v\r\n"),
    Case("meta mg T touches", ms(b"foo", b"x") + b"mg foo T30 t\r\nmg foo t\r\n"),
    Case("meta mg t before T",
         ms(b"foo", b"x") + b"mg foo t T30\r\nmg foo t\r\n",
         known="kumo's gat answers the touched item: t placed before T "
               "reports the new TTL"),
    Case("meta mg T miss", b"mg foo T30 t v\r\n"),
    Case("meta mg N vivifies", b"mg foo N30 v t\r\n"),
    Case("meta mg N t before N", b"mg foo t N30 s\r\n"),
    Case("meta mg N q shown", b"mg foo N30 q k O1\r\nmn\r\n"),
    Case("meta mg N then a plain get", b"mg foo N30 s\r\nget foo\r\n"),
    Case("meta mg N second fetch",
         b"mg foo N30 v\r\nmg foo N30 v\r\n", known=NO_TOKEN),
    Case("meta mg R wins below the TTL",
         ms(b"foo", b"hi", b"T30") + b"mg foo R40 v t\r\n"),
    Case("meta mg R above the TTL", ms(b"foo", b"hi", b"T30") + b"mg foo R20 v\r\n"),
    Case("meta mg R without expiry", ms(b"foo", b"hi") + b"mg foo R20 v\r\n"),
    Case("meta mg R second fetch",
         ms(b"foo", b"hi", b"T30") + b"mg foo R40 v\r\nmg foo R40 v\r\n",
         known=NO_TOKEN),
    Case("meta mg leading spaces", ms(b"foo", b"x") + b"   mg foo v\r\n"),
    Case("meta mg bare newline", ms(b"foo", b"x") + b"mg foo v\n"),
    Case("meta mg key of 250 bytes",
         ms(b"k" * 250, b"x") + b"mg " + b"k" * 250 + b" v k\r\n"),

    # ---- ms ----
    Case("meta ms c k O", ms(b"foo", b"bar", b"c k O1")),
    Case("meta ms empty value", ms(b"foo", b"") + b"mg foo v s\r\n"),
    Case("meta ms value holding CRLF", ms(b"foo", b"\r\n\r\n") + b"mg foo v\r\n"),
    Case("meta ms F max", ms(b"foo", b"x", b"F4294967295") + b"mg foo f v\r\n"),
    Case("meta ms T-1 expires at once", ms(b"foo", b"hi", b"T-1") + b"mg foo v\r\n"),
    Case("meta ms q hides HD", ms(b"foo", b"x", b"q") + b"mn\r\n"),
    Case("meta ms q shows NS",
         ms(b"foo", b"x") + ms(b"foo", b"y", b"q ME") + b"mn\r\n"),
    Case("meta ms ME add", ms(b"foo", b"x", b"ME") + ms(b"foo", b"y", b"ME c k O2")
         + b"mg foo v\r\n"),
    Case("meta ms MR replace", ms(b"foo", b"x", b"MR") + ms(b"foo", b"y")
         + ms(b"foo", b"z", b"MR") + b"mg foo v\r\n"),
    Case("meta ms MA append", ms(b"foo", b"x", b"MA") + ms(b"foo", b"ab", b"F3")
         + ms(b"foo", b"cd", b"MA F9") + b"mg foo v f\r\n"),
    Case("meta ms MP prepend", ms(b"foo", b"ab") + ms(b"foo", b"cd", b"MP")
         + b"mg foo v\r\n"),
    Case("meta ms MS set", ms(b"foo", b"ab", b"MS") + b"mg foo v\r\n"),
    Case("meta ms lowercase mode", ms(b"foo", b"ab", b"Ms") + b"mg foo v\r\n"),
    Case("meta ms C missing", ms(b"foo", b"x", b"C%d" % BIG)),
    Case("meta ms C mismatch", ms(b"foo", b"x") + ms(b"foo", b"y", b"C%d" % BIG)
         + b"mg foo v\r\n"),
    Case("meta ms C match", ms(b"foo", b"x", b"c"),
         ms(b"foo", b"y", b"C{cas} c") + b"mg foo v\r\n"),
    Case("meta ms MR C missing", ms(b"foo", b"x", b"MR C%d" % BIG)),
    Case("meta ms MR C mismatch", ms(b"foo", b"x")
         + ms(b"foo", b"y", b"MR C%d" % BIG)),
    Case("meta ms MA C missing and mismatch", ms(b"foo", b"x", b"MA C%d" % BIG)
         + ms(b"foo", b"x") + ms(b"foo", b"y", b"MA C%d" % BIG) + b"mg foo v\r\n"),
    Case("meta ms MA C match", ms(b"foo", b"x", b"c"),
         ms(b"foo", b"y", b"MA C{cas}") + b"mg foo v\r\n"),
    Case("meta ms ME ignores C", ms(b"foo", b"x", b"ME C%d" % BIG) + b"mg foo v\r\n"),
    Case("meta ms I without C", ms(b"foo", b"hi", b"I") + b"mg foo v\r\n"),
    Case("meta ms then classic get and gets",
         ms(b"foo", b"hi", b"F7") + b"get foo\r\ngets foo\r\n"),

    # ---- md ----
    Case("meta md hit", ms(b"foo", b"x") + b"md foo\r\nmg foo\r\n"),
    Case("meta md miss", b"md foo\r\n"),
    Case("meta md q", ms(b"foo", b"x") + b"md foo q\r\nmd foo q\r\nmn\r\n"),
    Case("meta md k O", ms(b"foo", b"x") + b"md foo k O5\r\nmd foo k O6\r\n"),
    Case("meta md C missing", b"md foo C5\r\n"),
    Case("meta md C mismatch", ms(b"foo", b"x") + b"md foo C%d k\r\nmg foo v\r\n"
         % BIG),
    Case("meta md C match", ms(b"foo", b"x", b"c"),
         b"md foo C{cas}\r\nmg foo v\r\n"),
    Case("meta md ignores other flags", ms(b"foo", b"x") + b"md foo v s F5\r\n"),

    # ---- ma ----
    Case("meta ma miss", b"ma foo\r\n"),
    Case("meta ma N creates 0", b"ma foo N0\r\nmg foo v\r\n"),
    Case("meta ma N J", b"ma foo N0 J13 v\r\nma foo v\r\n"),
    Case("meta ma incr", ms(b"n", b"5") + b"ma n v\r\n"),
    Case("meta ma D", ms(b"n", b"10") + b"ma n D5 v\r\n"),
    Case("meta ma decr floors at 0", ms(b"n", b"3") + b"ma n MD D10 v\r\n"),
    Case("meta ma modes", ms(b"n", b"10") +
         b"ma n M- v\r\nma n M+ v\r\nma n MI v\r\nma n Md v\r\nma n Mi v\r\n"),
    Case("meta ma wraps", ms(b"n", b"18446744073709551615") + b"ma n v\r\n"),
    Case("meta ma D max", ms(b"n", b"0") + b"ma n D18446744073709551615 v\r\n"),
    Case("meta ma non-numeric", ms(b"n", b"abc") + b"ma n\r\nma n q\r\nmn\r\n"),
    Case("meta ma q hides", ms(b"n", b"1") + b"ma n q\r\nma n q v\r\nma n v\r\nmn\r\n"),
    Case("meta ma q shows a creation", b"ma n q N0 J3 v\r\nma n q N0\r\nmn\r\n"),
    Case("meta ma t c k O", ms(b"n", b"1") + b"ma n v t c k O7\r\n"),
    Case("meta ma C missing", b"ma n C5\r\n"),
    Case("meta ma C mismatch", ms(b"n", b"1") + b"ma n C%d v\r\nmg n v\r\n" % BIG),
    Case("meta ma C match", ms(b"n", b"1", b"c"), b"ma n C{cas} v\r\n"),
    Case("meta ma T touches", ms(b"n", b"1") + b"ma n T30 t v\r\nmg n t v\r\n"),
    Case("meta ma t before T", ms(b"n", b"1") + b"ma n t T30 v\r\nma n t\r\n"),
    Case("meta ma N then T", b"ma n N0 T30 t v\r\n"),
    Case("meta ma N t before N", b"ma n t N30 v\r\nma n t\r\n"),
    Case("meta ma on a value with spaces", ms(b"n", b"12  ") + b"ma n v\r\n"),

    # ---- mn, me ----
    Case("meta mn", b"mn\r\n"),
    Case("meta mn with words", b"mn foo bar\r\n"),
    Case("meta me hit", ms(b"foo", b"hi") + b"me foo\r\n"),
    Case("meta me miss", b"me foo\r\n"),
    Case("meta me flags and expiry", ms(b"foo", b"hi", b"F5 T100") + b"me foo\r\n"),
    Case("meta me sizes", ms(b"foo", b"x" * 40) + b"me foo\r\n" +
         ms(b"foo", b"x" * 60) + b"me foo\r\n" + ms(b"foo", b"x" * 1000)
         + b"me foo\r\n"),
    Case("meta me after mg", ms(b"foo", b"hi") + b"mg foo\r\nme foo\r\n",
         known="kumo keeps no access history: me answers fetch=no"),
    Case("meta me b", ms(b"Zm9v", b"hi", b"b") + b"me Zm9v b\r\n"),
    Case("meta me no key", b"me\r\n"),

    # ---- base64 keys ----
    Case("meta b keys", ms(b"Zm9v", b"hi", b"b k") +
         b"mg Zm9v b k v\r\nmg foo v\r\nget foo\r\nmd Zm9v b k q\r\nmg foo\r\n"),
    Case("meta b binary key", ms(b"AAEC/w==", b"hi", b"b") +
         b"mg AAEC/w== b k v\r\nma AAEC/w== b\r\n"),
    Case("meta b k of a key stored with b",
         ms(b"Zm9v", b"hi", b"b") + b"mg foo k v\r\n",
         known="kumo keeps no per-item base64 mark: k returns the key as "
               "asked"),
    Case("meta b bad base64", b"mg Zm9v! b v\r\n",
         known="kumo decodes base64 keys strictly (memcached skips bytes "
               "outside the alphabet)"),

    # ---- mixing and pipelining ----
    Case("meta and classic on one connection",
         b"set a 0 0 1\r\n1\r\nmg a v\r\n" + ms(b"b", b"2") +
         b"get a b\r\nincr a 5\r\nma a v\r\ndelete b\r\nmg b\r\n"
         b"ma a MD D2 v\r\ngets a\r\n"),
    Case("meta q pipeline with mn",
         ms(b"k1", b"1", b"q") + ms(b"k2", b"2", b"q") + ms(b"k3", b"3", b"q")
         + b"mg k1 v q k\r\nmg k4 v q k\r\nmg k3 v q k\r\nmd k2 q\r\n"
         b"md k4 q\r\nmg k2 q v\r\nmn\r\n"),
    Case("meta 50 pipelined ms and mg",
         b"".join(ms(b"p%d" % i, b"%03d" % i) + b"mg p%d v k\r\n" % i
                  for i in range(50))),

    # ---- malformed ----
    Case("meta mg no key", b"mg\r\n"),
    Case("meta ms no key", b"ms\r\n"),
    Case("meta ms no length", b"ms foo\r\n"),
    Case("meta ms bad length", b"ms foo x\r\nmn\r\n"),
    Case("meta ms negative length", b"ms foo -1\r\nmn\r\n"),
    Case("meta ms bad data chunk", b"ms foo 1\r\nxy\r\nmg foo v\r\n"),
    Case("meta ms too large", b"ms foo 1048577\r\n" + b"x" * 1048577 +
         b"\r\nmg foo\r\n", pause=0.5),
    Case("meta mg duplicate flag", b"mg foo v v\r\n"),
    Case("meta mg duplicate flag with q", b"mg foo v v q\r\nmn\r\n"),
    Case("meta mg invalid flag", b"mg foo !\r\n"),
    Case("meta md invalid flag", b"md foo !\r\n"),
    Case("meta ma invalid flag", b"ma foo !\r\n"),
    Case("meta ms invalid flag swallows", b"ms foo 2 !\r\nhi\r\nmg foo\r\n"),
    Case("meta mg 17 flags", b"mg foo " + b" ".join(
        bytes([c]) for c in b"bcfhklOqstuvNRTPL") + b"\r\n"),
    Case("meta mg 18 flags", b"mg foo " + b" ".join(
        bytes([c]) for c in b"bcfhklOqstuvNRTPLE") + b"\r\n"),
    Case("meta ms 17 flags", b"ms foo 1 " + b" ".join(
        bytes([c]) for c in b"bcFIkOqsTMPLCEfhv") + b"\r\nx\r\n"),
    Case("meta key of 251 bytes", b"mg " + b"k" * 251 + b" v\r\n"),
    Case("meta bad number", b"mg foo N3x\r\n"),
    Case("meta ms bad F", b"ms foo 1 Fx\r\nx\r\nmg foo\r\n"),
    Case("meta ma bad D", b"ma foo Dx\r\n"),
    Case("meta ma bad J", b"ma foo J-1 N0\r\n"),
    Case("meta ms bad mode", b"ms foo 1 MX\r\nx\r\n"),
    Case("meta ms long mode", b"ms foo 1 MSS\r\nx\r\n"),
    Case("meta ma bad mode", b"ma foo MX\r\n"),
    Case("meta opaque of 31 bytes", b"mg foo O" + b"x" * 31 + b"\r\n"),
    Case("meta opaque of 40 bytes", b"mg foo O" + b"x" * 40 + b"\r\n"),
    Case("meta mg E (1.6.27)", b"mg foo E5\r\n"),
    Case("meta ms E (1.6.27)", ms(b"foo", b"hi", b"E5") + b"mg foo v\r\n"),
    Case("meta md x (1.6.27)", ms(b"foo", b"hi") + b"md foo x\r\nmg foo v\r\n"),
    Case("meta ma E (1.6.27)", b"ma foo E5\r\n"),
    Case("meta three-letter command", b"mgx foo v\r\nmz foo\r\n"),
    Case("meta line over 2048 bytes",
         b"mg foo " + b" ".join([b"O" + b"x" * 30] * 70) + b"\r\nmn\r\n"),
    Case("meta 3000-byte flag read whole", b"mg foo v " + b"s" * 3000 +
         b"\r\nmn\r\n"),
    Case("meta 3000-byte key read whole", b"mg " + b"k" * 3000 +
         b" v\r\nmn\r\n"),
    Case("meta 2049 bytes without newline", b"mg foo v " + b"s" * 2040,
         sentinel=False),
    Case("meta 3000-byte line in two writes",
         b"mg foo v " + b"s" * 2100, b"s" * 900 + b"\r\nmn\r\n"),
    Case("meta line split in the key", ms(b"key", b"x") + b"mg k", b"ey v\r\n"),
    Case("meta ms split in the value", b"ms foo 10\r\nabcde",
         b"fghij\r\nmg foo v\r\n"),
    Case("meta me extra flags", ms(b"foo", b"hi") + b"me foo v\r\n"),
]
