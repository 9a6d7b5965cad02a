"""transcript_cases.py - the requests it_transcript.py sends to memcached
1.6.18 and to kumo-gateway, whose replies must be the same.

A case is a name and the raw bytes of one or more writes; it runs on a
fresh connection to each server, both emptied by flush_all before it. To
add cases (meta commands, binary protocol...), append Case(...) objects to
CASES, or build a list in another module and add it at the end of this
one. Names must be unique.
"""

KB = 1024
MB = 1024 * 1024


class Case:
    """
    name      short and unique: the TAP line's description
    steps     bytes to send, one write each; between two writes the test
              reads replies for `pause` seconds, so each write reaches the
              server on its own. b"{cas}" in a step becomes the cas unique
              of the last gets/gats VALUE line received so far.
    sentinel  True: b"version\\r\\n" is appended to the last write and the
              replies are read up to its VERSION line. False: read until
              the server has been quiet for `wait` seconds or closed the
              connection (for cases whose last line must not be ended, or
              whose last bytes are an unfinished request).
    known     None, or why kumo answers otherwise (a known difference,
              reported as TAP TODO: it must still differ, or be removed).
    """

    def __init__(self, name, *steps, sentinel=True, wait=0.4, pause=0.15,
                 known=None, binary=False):
        assert steps and all(isinstance(s, bytes) for s in steps), name
        self.binary = binary    # memcached's binary protocol: the sentinel
                                # is a noop, replies compared frame by frame
        self.name = name
        self.steps = list(steps)
        self.sentinel = sentinel
        self.wait = wait
        self.pause = pause
        self.known = known


def keys(n, fmt=b"k%d"):
    return b" ".join(fmt % i for i in range(n))


def sets(*pairs):
    """set requests for (key, value) pairs, flags 0, no expiry."""
    return b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v)
                    for k, v in pairs)


CASES = [
    # ---- storage commands ----
    Case("set get", b"set k 0 0 5\r\nhello\r\nget k\r\n"),
    Case("set flags", b"set k 12345 0 1\r\nx\r\nget k\r\n"),
    Case("set flags 2^32-1", b"set k 4294967295 0 1\r\nx\r\nget k\r\n"),
    Case("set flags 2^32 wraps to 0", b"set k 4294967296 0 1\r\nx\r\nget k\r\n"),
    Case("set flags 2^32+5 wraps to 5",
         b"set k 4294967301 0 1\r\nx\r\nget k\r\n"),
    Case("set flags +7", b"set k +7 0 1\r\nx\r\nget k\r\n"),
    Case("set flags -0", b"set k -0 0 1\r\nx\r\nget k\r\n"),
    Case("set flags -1", b"set k -1 0 1\r\nx\r\nget k\r\n"),
    Case("set flags abc", b"set k abc 0 1\r\nx\r\nget k\r\n"),
    Case("set flags 0x10", b"set k 0x10 0 1\r\nx\r\n"),
    Case("set flags with a tab after", b"set k 5\tz 0 1\r\nx\r\nget k\r\n"),
    Case("set empty value", b"set k 0 0 0\r\n\r\nget k\r\n"),
    Case("set binary value",
         b"set k 3 0 10\r\n\r\n\x00get x\r\n\r\nget k\r\n"),
    Case("set noreply", b"set k 0 0 1 noreply\r\nx\r\nget k\r\n"),
    Case("set sixth word not noreply", b"set k 0 0 1 foo\r\nx\r\nget k\r\n"),
    Case("set seven words", b"set k 0 0 1 noreply x\r\nx\r\n"),
    Case("set three words", b"set k 0 0\r\nx\r\n"),
    Case("set no arguments", b"set\r\n"),
    Case("set bad data chunk", b"set k 0 0 1\r\nxy\r\nget k\r\n"),
    Case("set data ends with bare newline", b"set k 0 0 1\r\nx\nget k\r\n"),
    Case("set data ends with \\r\\r", b"set k 0 0 1\r\nx\r\rget k\r\n"),
    Case("set noreply bad data chunk",
         b"set k 0 0 1 noreply\r\nxyz\r\nget k\r\n"),
    Case("set bytes -1", b"set k 0 0 -1\r\nx\r\n"),
    Case("set bytes -0", b"set k 0 0 -0\r\n\r\nget k\r\n"),
    Case("set bytes abc", b"set k 0 0 abc\r\nx\r\n"),
    Case("set bytes noreply", b"set k 0 0 noreply\r\nx\r\n"),
    Case("set bytes 2^31-1 (issue 70)",
         b"set k 0 0 2147483647\r\nscoobyscoobydoo"),
    Case("set bytes 2^32-1 (issue 70)", b"set k 0 0 4294967295\r\nx\r\n"),
    Case("set bytes 2^32+1 wraps to 1",
         b"set k 0 0 4294967297\r\nx\r\nget k\r\n"),
    Case("set bytes with \\r before \\r\\n", b"set k 0 0 1\r\r\nx\r\nget k\r\n"),
    Case("set too large", b"set k 0 0 %d\r\n" % (2 * MB) + b"v" * (2 * MB)
         + b"\r\nget k\r\n"),
    Case("set too large looks like commands",
         b"set k 0 0 %d\r\n" % (2 * MB)
         + (b"set x 0 0 1\r\ny\r\n" * (2 * MB // 16 + 1))[:2 * MB]
         + b"\r\nget x\r\n"),
    Case("set too large noreply",
         b"set k 0 0 %d noreply\r\n" % (2 * MB) + b"v" * (2 * MB)
         + b"\r\nget k\r\n"),
    Case("set too large drops the old value",
         sets((b"k", b"old")) + b"set k 0 0 %d\r\n" % (2 * MB)
         + b"v" * (2 * MB) + b"\r\nget k\r\n"),
    Case("set too large, data still arriving",
         b"set k 0 0 %d\r\n" % (2 * MB) + b"v" * 1000, sentinel=False,
         known="memcached answers a too-large set once it has read and "
               "dropped the data block; kumo answers at once"),
    Case("set data still arriving", b"set k 0 0 10\r\nabc", sentinel=False),
    Case("set largest value memcached takes with a 1-byte key",
         b"set k 0 0 1048516\r\n" + b"v" * 1048516 + b"\r\n"),
    Case("set 1 MiB value",
         b"set k 0 0 1048576\r\n" + b"v" * 1048576 + b"\r\nget z\r\n",
         known="-I bounds the value in kumo; memcached counts its item "
               "header and key (about 60 bytes) against -I as well"),
    Case("set 250-byte key", b"set " + b"k" * 250 + b" 0 0 1\r\nx\r\nget "
         + b"k" * 250 + b"\r\n"),
    Case("set 251-byte key", b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n"),
    Case("set 251-byte key noreply",
         b"set " + b"k" * 251 + b" 0 0 1 noreply\r\nx\r\n"),
    Case("set exptime -1", b"set k 0 -1 1\r\nx\r\nget k\r\n"),
    Case("set exptime 2^32-1 is -1",
         b"set k 0 4294967295 1\r\nx\r\nget k\r\n"),
    Case("set exptime 2^32 is 0 (never)",
         b"set k 0 4294967296 1\r\nx\r\nget k\r\n"),
    Case("set exptime in the past", b"set k 0 1000000000 1\r\nx\r\nget k\r\n"),
    Case("set exptime 2^63", b"set k 0 9223372036854775808 1\r\nx\r\n"),
    Case("set exptime 1.5", b"set k 0 1.5 1\r\nx\r\n"),
    Case("set bare newlines", b"set k 0 0 1\nx\r\nget k\n"),
    Case("set runs of spaces", b"   set   k  3   0    1  \r\nx\r\nget k\r\n"),
    Case("set tab instead of space", b"set k\t0 0 1\r\nx\r\n"),
    Case("add new", b"add k 0 0 1\r\nx\r\nget k\r\n"),
    Case("add existing", sets((b"k", b"a")) + b"add k 0 0 1\r\nx\r\nget k\r\n"),
    Case("add noreply", sets((b"k", b"a"))
         + b"add k 0 0 1 noreply\r\nx\r\nget k\r\n"),
    Case("replace missing", b"replace k 0 0 1\r\nx\r\nget k\r\n"),
    Case("replace existing",
         sets((b"k", b"a")) + b"replace k 7 0 1\r\nx\r\nget k\r\n"),
    Case("append", sets((b"k", b"ab"))
         + b"append k 9 0 2\r\ncd\r\nget k\r\n"),
    Case("append missing", b"append k 0 0 1\r\nx\r\nget k\r\n"),
    Case("prepend", b"set k 5 0 2\r\ncd\r\nprepend k 0 0 2\r\nab\r\ngets k\r\n"),
    Case("prepend missing noreply",
         b"prepend k 0 0 1 noreply\r\nx\r\nget k\r\n"),
    Case("append wrong count", b"append k 0 0\r\n"),
    Case("cas after gets", sets((b"k", b"a")) + b"gets k\r\n",
         b"cas k 3 0 1 {cas}\r\nb\r\ngets k\r\n"),
    Case("cas stale", sets((b"k", b"a")) + b"gets k\r\n",
         sets((b"k", b"b")) + b"cas k 0 0 1 {cas}\r\nc\r\nget k\r\n"),
    Case("cas wrong unique", sets((b"k", b"a"))
         + b"cas k 0 0 1 999999999999\r\nc\r\nget k\r\n"),
    Case("cas missing key", b"cas k 0 0 1 12345\r\nc\r\n"),
    Case("cas unique 0 (getset.t)", sets((b"k", b"a"))
         + b"cas k 0 0 1 0\r\nc\r\nget k\r\n"),
    Case("cas noreply", sets((b"k", b"a")) + b"gets k\r\n",
         b"cas k 0 0 1 {cas} noreply\r\nb\r\nget k\r\n"),
    Case("cas unique -1", b"cas k 0 0 1 -1\r\nc\r\n"),
    Case("cas unique noreply", b"cas k 0 0 1 noreply\r\nc\r\n"),
    Case("cas five words", b"cas k 0 0 1\r\nc\r\n"),
    Case("cas eight words", b"cas k 0 0 1 2 3 4\r\n"),
    Case("gets cas changes with each write",
         sets((b"k", b"a")) + b"gets k\r\n" + sets((b"k", b"b"))
         + b"gets k\r\ngets k\r\n"),

    # ---- get, gets, gat, gats ----
    Case("get miss", b"get nothing\r\n"),
    Case("get multi", sets((b"a", b"1"), (b"c", b"3"))
         + b"get a b c d\r\n"),
    Case("get same key twice", sets((b"a", b"1")) + b"get a a\r\n"),
    Case("gets multi", sets((b"a", b"1"), (b"b", b"2")) + b"gets a x b\r\n"),
    Case("get without key", b"get\r\n"),
    Case("get with spaces only", b"get    \r\n"),
    Case("gets without key", b"gets\r\n"),
    Case("get runs of spaces", sets((b"a", b"1"))
         + b"   get    a     a  \r\n"),
    Case("get key noreply", sets((b"noreply", b"1")) + b"get noreply\r\n"),
    Case("get 250-byte key", b"get " + b"k" * 250 + b"\r\n"),
    Case("get 251-byte key", b"get " + b"k" * 251 + b"\r\n"),
    Case("get 251-byte key after a hit (issue 152)",
         sets((b"a", b"1")), b"get a " + b"k" * 251 + b"\r\n"),
    Case("get 251-byte key pipelined behind a set",
         sets((b"a", b"1")) + b"get a " + b"k" * 251 + b"\r\n",
         known="a memcached bug: a get that fails drops the unsent replies "
               "of the requests before it on the connection (here STORED); "
               "kumo keeps them"),
    Case("get 251-byte key last of 5000",
         sets((b"k1", b"1")) + b"get " + keys(5000) + b" " + b"z" * 251
         + b"\r\n"),
    Case("bget", sets((b"a", b"1")) + b"bget a b\r\n"),
    Case("bget without key", b"bget\r\n"),
    Case("gat", sets((b"a", b"1")) + b"gat 100 a b\r\nget a\r\n"),
    Case("gats", sets((b"a", b"1")) + b"gats 0 a\r\n"),
    Case("gat without key", b"gat 10\r\n"),
    Case("gats without key, spaces", b"gats 10    \r\n"),
    Case("gat without exptime", b"gat\r\n"),
    Case("gat bad exptime", b"gat abc a\r\n"),
    Case("gat exptime +5", sets((b"a", b"1")) + b"gat +5 a\r\n"),
    Case("gat exptime -1 expires", sets((b"a", b"1"))
         + b"gat -1 a\r\nget a\r\n"),
    Case("gat exptime 2^63", b"gat 9223372036854775808 a\r\n"),
    Case("gat noreply is an exptime", b"gat noreply a\r\n"),
    Case("get uppercase", b"GET a\r\n"),
    Case("get tab separator", b"get\ta\r\n"),
    Case("get 3000 keys", sets((b"k7", b"7"), (b"k2999", b"last"))
         + b"get " + keys(3000) + b"\r\n"),
    Case("get 10000 keys, 80 KB line",
         sets((b"key:00001", b"1"), (b"key:09999", b"2"))
         + b"get " + keys(10000, b"key:%05d") + b"\r\n"),
    Case("get 450 KB line, 30000 keys",
         sets((b"key:000001", b"1"), (b"key:029999", b"2"))
         + b"get " + keys(30000, b"key:%06d") + b"\r\n"),
    Case("gets 450 KB line in pieces",
         sets((b"key:000100", b"1")) + b"gets " + keys(15000, b"key:%06d"),
         b" " + keys(15000, b"more:%06d"), b"\r\n"),
    Case("get one key 18725 times (getset.t)", sets((b"foobarbaz", b"hi"))
         + b"get " + b"foobarbaz " * 18725 + b"\r\n"),
    Case("get 100 KB of spaces then a key",
         sets((b"a", b"1")) + b"get" + b" " * 100000 + b"a\r\n"),
    Case("get 100 KB of spaces, no key",
         b"get" + b" " * 100000 + b"\r\n"),
    Case("gat 20000-byte line",
         sets((b"k1", b"1")) + b"gat 0 " + keys(3000) + b"\r\n",
         known="memcached closes a gat line over 16 KiB (only get and gets "
               "lines may be longer); kumo reads get, gets, gat and gats "
               "lines of any length"),

    # ---- keys are bytes ----
    Case("key with control bytes (memcaslap)",
         b"set \x10k\x01\x1f 0 0 1\r\nx\r\nget \x10k\x01\x1f\r\n"),
    Case("key with DEL and high bytes",
         b"set \x7f\x80\xff\xc3\xa9 0 0 1\r\nx\r\nget \x7f\x80\xff\xc3\xa9\r\n"),
    Case("key with tab", b"set a\tb 0 0 1\r\nx\r\nget a\tb\r\n"),
    Case("key with \\r inside", b"set a\rb 0 0 1\r\nx\r\nget a\rb\r\n"),
    Case("key ending in \\r", b"set a\r 0 0 1\r\nx\r\nget a\r\r\nget a\r\n"),
    Case("key with NUL ends the line",
         b"set a\x00b 0 0 1\r\nx\r\nget a\x00b\r\n"),
    Case("get NUL then more keys", sets((b"a", b"1"), (b"b", b"2"))
         + b"get a\x00 b\r\n"),
    Case("delete control-byte key", b"set \x01 0 0 1\r\nx\r\n"
         b"delete \x01\r\nget \x01\r\n"),
    Case("incr control-byte key", b"set \x02\x03 0 0 1\r\n5\r\n"
         b"incr \x02\x03 2\r\n"),
    Case("touch control-byte key", b"set \x1b 0 0 1\r\nx\r\ntouch \x1b 0\r\n"),

    # ---- delete ----
    Case("delete hit", sets((b"k", b"a")) + b"delete k\r\nget k\r\n"),
    Case("delete miss", b"delete k\r\n"),
    Case("delete 0", sets((b"k", b"a")) + b"delete k 0\r\n"),
    Case("delete 0 noreply", sets((b"k", b"a"))
         + b"delete k 0 noreply\r\nget k\r\n"),
    Case("delete noreply", sets((b"k", b"a"))
         + b"delete k noreply\r\nget k\r\n"),
    Case("delete time 10 (issue 3)", b"delete k 10\r\n"),
    Case("delete time 10 noreply", sets((b"k", b"a"))
         + b"delete k 10 noreply\r\nget k\r\n"),
    Case("delete 0 0", b"delete k 0 0\r\n"),
    Case("delete noreply 0", b"delete k noreply 0\r\n"),
    Case("delete 00", b"delete k 00\r\n"),
    Case("delete five words", b"delete k 0 noreply x\r\n"),
    Case("delete without key", b"delete\r\n"),
    Case("delete 251-byte key", b"delete " + b"k" * 251 + b"\r\n"),

    # ---- incr, decr ----
    Case("incr", sets((b"n", b"10")) + b"incr n 5\r\nget n\r\n"),
    Case("incr missing", b"incr n 1\r\n"),
    Case("incr non-numeric", sets((b"n", b"abc")) + b"incr n 1\r\n"),
    Case("incr wraps at 2^64", sets((b"n", b"18446744073709551615"))
         + b"incr n 2\r\n"),
    Case("incr delta 2^64-1", sets((b"n", b"1"))
         + b"incr n 18446744073709551615\r\n"),
    Case("incr delta 2^64", b"incr n 18446744073709551616\r\n"),
    Case("incr delta +5", sets((b"n", b"1")) + b"incr n +5\r\n"),
    Case("incr delta -1", sets((b"n", b"1")) + b"incr n -1\r\n"),
    Case("incr delta -0", sets((b"n", b"1")) + b"incr n -0\r\n"),
    Case("incr delta abc", b"incr n abc\r\n"),
    Case("incr delta noreply", sets((b"n", b"1"))
         + b"incr n noreply\r\nget n\r\n"),
    Case("incr noreply", sets((b"n", b"1")) + b"incr n 2 noreply\r\nget n\r\n"),
    Case("incr extra word", sets((b"n", b"1")) + b"incr n 2 x\r\n"),
    Case("incr wrong count", b"incr n\r\nincr n 1 2 3\r\n"),
    Case("incr past 2^63 (incrdecr.t)",
         sets((b"n", b"9223372036854775807")) + b"incr n 1\r\nincr n 1\r\n"
         b"decr n 1\r\n"),
    Case("incr past 2^32 (incrdecr.t)", sets((b"n", b"4294967296"))
         + b"incr n 1\r\n"),
    Case("incr value with a leading space", sets((b"n", b" 5"))
         + b"incr n 1\r\nget n\r\n",
         known="memcached reads the stored number as strtoull does (white "
               "space before it allowed); kumo-server refuses it"),
    Case("incr value with a trailing space", sets((b"n", b"5 "))
         + b"incr n 1\r\nget n\r\n",
         known="memcached writes a shorter result in place, padded with "
               "spaces to the old length (\"6 \"); kumo stores \"6\""),
    Case("incr value 5a", sets((b"n", b"5a")) + b"incr n 1\r\n"),
    Case("incr empty value", sets((b"n", b"")) + b"incr n 1\r\n"),
    Case("incr value -1", sets((b"n", b"-1")) + b"incr n 1\r\n"),
    Case("incr value 2^64", sets((b"n", b"18446744073709551616"))
         + b"incr n 1\r\n"),
    Case("incr grows the value", sets((b"n", b"99")) + b"incr n 1\r\nget n\r\n"),
    Case("decr", sets((b"n", b"10")) + b"decr n 3\r\n"),
    Case("decr stops at 0", sets((b"n", b"3")) + b"decr n 5\r\nget n\r\n"),
    Case("decr shrinks the value", sets((b"n", b"100"))
         + b"decr n 1\r\nget n\r\n",
         known="memcached decrements in place and pads the value with "
               "spaces (\"99 \"); kumo stores \"99\""),
    Case("decr missing noreply", b"decr n 1 noreply\r\n"),
    Case("incr 251-byte key", b"incr " + b"k" * 251 + b" 1\r\n"),

    # ---- touch ----
    Case("touch", sets((b"k", b"a")) + b"touch k 100\r\nget k\r\n"),
    Case("touch missing", b"touch k 10\r\n"),
    Case("touch -1 expires", sets((b"k", b"a")) + b"touch k -1\r\nget k\r\n"),
    Case("touch 2^32 is 0", sets((b"k", b"a"))
         + b"touch k 4294967296\r\nget k\r\n"),
    Case("touch bad exptime", b"touch k abc\r\n"),
    Case("touch noreply", sets((b"k", b"a")) + b"touch k 10 noreply\r\n"),
    Case("touch exptime noreply", b"touch k noreply\r\n"),
    Case("touch wrong count", b"touch k\r\n"),

    # ---- flush_all ----
    Case("flush_all", sets((b"k", b"a")) + b"flush_all\r\nget k\r\n"),
    Case("flush_all 0", sets((b"k", b"a")) + b"flush_all 0\r\nget k\r\n"),
    Case("flush_all -1 is now", sets((b"k", b"a"))
         + b"flush_all -1\r\nget k\r\n"),
    Case("flush_all 2^32-1 is now", sets((b"k", b"a"))
         + b"flush_all 4294967295\r\nget k\r\n"),
    Case("flush_all noreply", sets((b"k", b"a"))
         + b"flush_all noreply\r\nget k\r\n"),
    Case("flush_all 100 noreply", sets((b"k", b"a"))
         + b"flush_all 100 noreply\r\nget k\r\n"),
    Case("flush_all 100 later", sets((b"k", b"a"))
         + b"flush_all 100\r\nget k\r\n"),
    Case("flush_all past absolute time", sets((b"k", b"a"))
         + b"flush_all 1000000000\r\nget k\r\n"),
    Case("flush_all abc", b"flush_all abc\r\n"),
    Case("flush_all extra word", b"flush_all 10 foo\r\n"),
    Case("flush_all noreply noreply", b"flush_all noreply noreply\r\n"),
    Case("flush_all noreply then delay", b"flush_all noreply 5\r\n"),
    Case("flush_all four words", b"flush_all 1 2 3\r\n"),

    # ---- version, verbosity, stats, quit ----
    Case("version", b"version\r\n"),
    Case("version bare newline", b"version\n"),
    Case("version with words (memccapable -a)", b"version foo bar\r\n"),
    Case("version with 30 words",
         b"version " + b" ".join(b"w%d" % i for i in range(30)) + b"\r\n"),
    Case("verbosity", b"verbosity 1\r\n"),
    Case("verbosity noreply", b"verbosity 1 noreply\r\n"),
    Case("verbosity noreply alone", b"verbosity noreply\r\n"),
    Case("verbosity without level", b"verbosity\r\n"),
    Case("verbosity abc", b"verbosity abc\r\n"),
    Case("verbosity extra word", b"verbosity 1 foo\r\n"),
    Case("verbosity four words", b"verbosity 1 2 3\r\n"),
    Case("verbosity -1", b"verbosity -1\r\n"),
    Case("stats", b"stats\r\n",
         known="kumo-gateway prints memcached's fields in its order, then "
               "its own (servers, retries...: doc/kumo-gateway.md)"),
    Case("stats reset", b"stats reset\r\n"),
    Case("stats reset extra word", b"stats reset now\r\n"),
    Case("stats unknown", b"stats foo\r\n"),
    Case("stats unknown with words", b"stats foo bar baz\r\n"),
    Case("stats detail", b"stats detail\r\n",
         known="stats detail is not implemented (ERROR)"),
    Case("stats settings", b"stats settings\r\n",
         known="kumo-gateway prints memcached's settings in its order, then "
               "its own (managers, timeouts...: doc/kumo-gateway.md)"),
    Case("stats settings extra word", b"stats settings now\r\n",
         known="kumo-gateway prints memcached's settings in its order, then "
               "its own (managers, timeouts...: doc/kumo-gateway.md)"),
    Case("stats sizes", b"stats sizes\r\n"),
    # (not sent: stats items and stats slabs, whose classes in memcached
    # depend on the cases before, flushed items and pages staying put;
    # it_stats compares them on a fresh memcached)
    Case("stats conns", b"stats conns\r\n",
         known="the names carry descriptor numbers, which differ"),
    Case("quit", sets((b"k", b"a")) + b"get k\r\nquit\r\nget k\r\n"),
    Case("quit with words", b"quit now please\r\n"),

    # ---- key listings: stats cachedump, lru_crawler ----
    # memcached's cachedump shows an item only once its LRU maintainer has
    # moved it, and flushed items until they are reclaimed: only its
    # replies without items are compared
    Case("stats cachedump empty class", sets((b"k", b"abc"))
         + b"stats cachedump 0 0\r\nstats cachedump 63 0\r\n"),
    Case("stats cachedump class 64", b"stats cachedump 64 0\r\n"),
    Case("stats cachedump class 2^32+64", b"stats cachedump 4294967360 0\r\n"),
    Case("stats cachedump without limit",
         b"stats cachedump\r\nstats cachedump 1\r\n"),
    Case("stats cachedump bad numbers",
         b"stats cachedump x 0\r\nstats cachedump 1 x\r\n"
         b"stats cachedump -1 0\r\nstats cachedump 1 -1\r\n"),
    # a metadump must come alone (memcached refuses one behind unanswered
    # requests), and memcached reads nothing pipelined after it until more
    # input comes: these send it last and read until quiet
    Case("lru_crawler metadump all",
         sets((b"k", b"abc")), b"lru_crawler metadump all\r\n",
         sentinel=False),
    Case("lru_crawler metadump hash",
         sets((b"k", b"abc")), b"lru_crawler metadump hash\r\n",
         sentinel=False),
    Case("lru_crawler metadump 1",
         sets((b"k", b"abc")), b"lru_crawler metadump 1\r\n",
         sentinel=False),
    Case("lru_crawler metadump ids with 1",
         sets((b"k", b"abc")), b"lru_crawler metadump 2,,+1\r\n",
         sentinel=False),
    Case("lru_crawler metadump url-encoded key",
         sets((b"a%b~c.d-e_f/\xc3\xa9", b"abc")),
         b"lru_crawler metadump all\r\n", sentinel=False),
    Case("lru_crawler metadump of an empty cache",
         b"lru_crawler metadump all\r\n", sentinel=False),
    Case("lru_crawler metadump class 63",
         sets((b"k", b"abc")), b"lru_crawler metadump 63\r\n",
         sentinel=False),
    Case("lru_crawler metadump class 0", b"lru_crawler metadump 0\r\n"),
    Case("lru_crawler metadump class 64", b"lru_crawler metadump 64\r\n"),
    Case("lru_crawler metadump class x", b"lru_crawler metadump x\r\n"),
    Case("lru_crawler metadump class 1,x", b"lru_crawler metadump 1,x\r\n"),
    Case("lru_crawler metadump class -1", b"lru_crawler metadump -1\r\n"),
    Case("lru_crawler metadump word counts",
         b"lru_crawler metadump\r\nlru_crawler metadump all extra\r\n"),
    Case("lru_crawler alone", b"lru_crawler\r\n"),
    Case("lru_crawler unknown",
         b"lru_crawler foo\r\nlru_crawler foo bar\r\n"
         b"lru_crawler mgdump all\r\nlru_crawler enable now\r\n"),
    Case("lru_crawler crawl all", b"lru_crawler crawl all\r\n"),
    Case("lru_crawler crawl 1,,2", b"lru_crawler crawl 1,,2\r\n"),
    Case("lru_crawler crawl bad",
         b"lru_crawler crawl\r\nlru_crawler crawl x\r\n"
         b"lru_crawler crawl 64\r\n"),
    Case("lru_crawler tocrawl", b"lru_crawler tocrawl 0\r\n"
         b"lru_crawler tocrawl x\r\nlru_crawler tocrawl 1 2\r\n"),
    Case("lru_crawler sleep", b"lru_crawler sleep 100\r\n"
         b"lru_crawler sleep 1000001\r\nlru_crawler sleep x\r\n"),
    # (not sent: "lru_crawler disable", after which memcached may fail to
    # start its crawler again, and "metadump ,", after which its crawler
    # is stuck: both would break the cases after them)

    # ---- unknown commands, empty lines, HTTP ----
    Case("unknown command (bogus-commands.t)",
         b"boguscommand slkdsldkfjsd\r\n"),
    Case("empty line", b"\r\n"),
    Case("bare newline", b"\n"),
    Case("spaces only", b"    \r\n"),
    Case("one letter", b"x\r\n"),
    Case("\\r\\r\\n", b"\r\r\n"),
    Case("NUL line", b"\x00\x01garbage\r\n"),
    Case("shutdown", b"shutdown\r\n"),
    Case("shutdown graceful", b"shutdown graceful\r\n"),
    Case("refresh_certs", b"refresh_certs\r\n"),
    Case("HTTP GET (malicious-commands.t)", b"GET / HTTP/1.0\r\n"),
    Case("HTTP PUT (malicious-commands.t)",
         b"PUT /asdf/asd/fasdfasdf/sadf HTTP/1.1\r\n"),
    Case("HTTP DELETE (malicious-commands.t)", b"DELETE HTTP/1.1\r\n"),
    Case("HTTP with headers", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    Case("HTTP/ as the only word", b"HTTP/1.1\r\n"),
    Case("HTTP/ not last", b"FOO HTTP/1.1 bar\r\n"),
    Case("HTTP/ after a known letter", b"sx HTTP/1.1\r\n"),
    Case("get / HTTP/1.1 is a get", b"get / HTTP/1.1\r\n"),
    Case("HTTP/ as the 23rd word",
         b"FOO " + b"a " * 21 + b"HTTP/1.1 bar\r\n"),

    # ---- line lengths ----
    Case("3000-byte line read whole", b"foo " + b"x" * 3000 + b"\r\n"),
    Case("3000-byte set line read whole",
         b"set " + b"k" * 3000 + b" 0 0 1\r\nx\r\n"),
    Case("16384-byte line", b"foo " + b"x" * 16378 + b"\r\n"),
    Case("16385-byte line", b"foo " + b"x" * 16379 + b"\r\n"),
    Case("2048 bytes without newline", b"x" * 2048, sentinel=False),
    Case("2049 bytes without newline", b"x" * 2049, sentinel=False),
    Case("3000-byte line in two writes",
         b"foo " + b"x" * 2100, b"x" * 900 + b"\r\n"),
    Case("get line in two writes",
         sets((b"k1", b"1")) + b"get " + keys(1000), b"\r\n"),
    Case("get line after 100 spaces in two writes",
         sets((b"k1", b"1")) + b" " * 100 + b"get " + keys(1000), b"\r\n"),
    Case("get line after 101 spaces in two writes",
         b" " * 101 + b"get " + keys(1000), b"\r\n"),
    Case("gat line in two writes", b"gat 0 " + keys(1000), b"\r\n",
         known="memcached closes a gat line over 2048 bytes that arrives "
               "without its newline; kumo reads it"),
    Case("storage line in two writes",
         b"set k 0 0 3\r\n", b"abc\r\nget k\r\n"),
    Case("request split in the data block",
         b"set k 0 0 10\r\nabcde", b"fghij\r\nget k\r\n"),
    Case("request split in the key", b"get k", b"ey\r\n"),

    # ---- noreply and pipelining ----
    Case("noreply on everything (noreply.t)",
         b"flush_all noreply\r\nflush_all 0 noreply\r\n"
         b"verbosity 0 noreply\r\nadd n 0 0 1 noreply\r\n1\r\nget n\r\n"
         b"set n 0 0 1 noreply\r\n2\r\nreplace n 0 0 1 noreply\r\n3\r\n"
         b"append n 0 0 1 noreply\r\n4\r\nprepend n 0 0 1 noreply\r\n5\r\n"
         b"get n\r\nincr n 3 noreply\r\ndecr n 2 noreply\r\nget n\r\n"
         b"delete n noreply\r\nget n\r\n"),
    Case("noreply error then next command",
         b"set k 0 0 x noreply\r\nabc\r\nget k\r\n"),
    Case("pipelined mix", sets((b"a", b"1")) + b"get a\r\nincr a 1\r\n"
         b"gets a\r\nbogus\r\ndelete a\r\nget a\r\nversion\r\n"),
    Case("200 pipelined sets and gets",
         b"".join(b"set p%d 0 0 3\r\n%03d\r\nget p%d\r\n" % (i, i, i)
                  for i in range(200))),
]

# Binary protocol cases (transcript_binary.py) and any others appended here.
from transcript_binary import BINARY_CASES  # noqa: E402
CASES += BINARY_CASES
# The meta commands (mg, ms, md, ma, mn, me): their own module.
from transcript_meta import META_CASES  # noqa: E402
CASES += META_CASES
