"""A message's content read in bulk (relay.smtpd.stream.SessionReader.read_content) against a line-by-line reading of
RFC 5321 (4.1.1.4 the end, 4.5.2 transparency, 4.5.3.1.6 line length), however the octets arrive."""

import asyncio
import random

import pytest

from relay.smtpd import stream
from tests.support.loops import in_thread

MAX_LINE = 1001


def line_by_line(raw: bytes, max_bytes: int | None, max_line: int = MAX_LINE):
    """(content, problem, what follows the end) the way a server reading one line at a time sees them."""
    position, size, problem, kept = 0, 0, None, []
    while True:
        end = raw.index(b"\r\n", position) + 2
        line, position = raw[position:end], end
        if line == b".\r\n":
            break
        size += len(line)
        if problem is None and max_bytes and size > max_bytes:
            problem = stream.TOO_MUCH
        if problem is None and len(line) > max_line:
            problem = stream.TOO_LONG
        kept.append(line[1:] if line.startswith(b".") else line)
    return (None if problem else b"".join(kept)), problem, raw[position:]


def read_in_chunks(raw: bytes, cuts: list[int], max_bytes: int | None, *, eof: bool = False,
                   spool_after: int | None = None):
    """read_content while `raw` arrives cut at these offsets, each piece in a turn of its own."""
    async def main():
        reader = stream.SessionReader()

        async def feed():
            for start, end in zip([0, *cuts], [*cuts, len(raw)]):
                reader.feed_data(raw[start:end])
                await asyncio.sleep(0)
            if eof:
                reader.feed_eof()

        feeder = asyncio.create_task(feed())
        try:
            content, problem = await reader.read_content(max_bytes=max_bytes, max_line=MAX_LINE,
                                                         spool_after=spool_after)
        finally:
            await feeder
        if isinstance(content, stream.SpooledContent):
            assert spool_after is not None and len(content) > spool_after
            content = content.read()
        return content, problem, bytes(reader._buffer)

    return in_thread(lambda: asyncio.run(main()))


def random_message(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(0, 40)):
        kind = rng.random()
        if kind < 0.15:
            text = "." * rng.randint(1, 3) + "dots"  # transparency
        elif kind < 0.2:
            text = ""
        elif kind < 0.25:
            text = "bare\nline feed and a lone \r inside"
        elif kind < 0.3:
            text = "x" * rng.choice([998, 999, 1000, 1500, 13000])  # around and far over the limit
        elif kind < 0.33:
            text = ".."  # a lone dot of the content, stuffed by the client
        else:
            text = "".join(rng.choice("abc .\r") for _ in range(rng.randint(1, 90)))
            text = text.replace("\r", "\r ")  # a CR not followed by LF
            text = ("." + text) if text.startswith(".") else text
        lines.append(text.encode() + b"\r\n")
    return b"".join(lines) + b".\r\n" + rng.choice([b"", b"QUIT\r\n", b"MAIL FROM:<a@b.example>\r\nRCPT TO"])


@pytest.mark.parametrize("seed", range(60))
def test_bulk_reading_matches_reading_line_by_line_however_the_octets_arrive(seed):
    rng = random.Random(seed)
    raw = random_message(rng)
    max_bytes = rng.choice([None, 0, 5000, len(raw) // 2 or 1, 100_000])
    expected = line_by_line(raw, max_bytes)
    whole = read_in_chunks(raw, [], max_bytes)
    assert whole == expected
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 30))))
        assert read_in_chunks(raw, cuts, max_bytes) == expected, cuts
    octet_by_octet = list(range(1, len(raw)))
    assert read_in_chunks(raw, octet_by_octet, max_bytes) == expected


@pytest.mark.parametrize("seed", range(30))
def test_content_spooled_to_a_file_is_the_same_however_the_octets_arrive(seed):
    rng = random.Random(1000 + seed)
    raw = random_message(rng)
    spool_after = rng.choice([1, 10, 200, len(raw) // 3 or 1])
    expected = line_by_line(raw, None)
    assert read_in_chunks(raw, [], None, spool_after=spool_after) == expected
    cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 30))))
    assert read_in_chunks(raw, cuts, None, spool_after=spool_after) == expected, cuts


def test_large_content_is_spooled_and_its_header_block_found():
    async def main():
        reader = stream.SessionReader()
        reader.feed_data(b"Subject: big\r\nFrom: a@b.example\r\n\r\n" + b"..x\r\n" * 5000 + b".\r\n")
        return await reader.read_content(max_bytes=None, max_line=MAX_LINE, spool_after=1000)

    content, problem = in_thread(lambda: asyncio.run(main()))
    assert problem is None and isinstance(content, stream.SpooledContent)
    assert content.header_block() == b"Subject: big\r\nFrom: a@b.example\r\n\r\n"
    assert content.read().endswith(b"\r\n.x\r\n") and len(content) == len(content.read())


def test_the_end_is_found_wherever_it_is_cut():
    raw = b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n.\r\nQUIT\r\n"
    expected = (b"Subject: hi\r\n\r\nleading dot\r\nbody\r\n", None, b"QUIT\r\n")
    for cut in range(1, len(raw)):
        assert read_in_chunks(raw, [cut], None) == expected, cut


def test_a_message_may_be_empty_or_begin_with_a_dot():
    assert read_in_chunks(b".\r\n", [], None) == (b"", None, b"")
    assert read_in_chunks(b"..\r\n.\r\n", [1, 2], None) == (b".\r\n", None, b"")
    assert read_in_chunks(b".x\r\n.\r\n", [], None) == (b"x\r\n", None, b"")


def test_a_dot_inside_a_line_or_after_a_bare_line_feed_is_content():
    raw = b"a.b\r\nc\n.\r\n\r.\r\n.\r\n"
    assert read_in_chunks(raw, [6, 7], None) == (b"a.b\r\nc\n.\r\n\r.\r\n", None, b"")


def test_line_length_and_size_limits():
    assert read_in_chunks(b"x" * 999 + b"\r\n.\r\n", [500], None) == (b"x" * 999 + b"\r\n", None, b"")
    assert read_in_chunks(b"x" * 1000 + b"\r\n.\r\nNOOP\r\n", [500], None) == (None, stream.TOO_LONG, b"NOOP\r\n")
    assert read_in_chunks(b"ab\r\ncd\r\n.\r\n", [], 8) == (b"ab\r\ncd\r\n", None, b"")
    assert read_in_chunks(b"ab\r\ncd\r\n.\r\n", [], 7) == (None, stream.TOO_MUCH, b"")
    # the first to happen is the one reported
    assert read_in_chunks(b"ab\r\n" + b"x" * 2000 + b"\r\n.\r\n", [3, 900, 1500], 3) == (None, stream.TOO_MUCH, b"")
    assert read_in_chunks(b"x" * 2000 + b"\r\nab\r\n.\r\n", [900, 1500], 2010) == (None, stream.TOO_LONG, b"")


def test_an_endless_line_is_not_kept_in_memory():
    async def main():
        reader = stream.SessionReader()
        task = asyncio.create_task(reader.read_content(max_bytes=None, max_line=MAX_LINE))
        largest = 0
        for _ in range(200):
            reader.feed_data(b"y" * 4096)
            await asyncio.sleep(0)
            largest = max(largest, len(reader._buffer))
        reader.feed_data(b"\r\n.\r\n")
        return largest, await task

    largest, result = in_thread(lambda: asyncio.run(main()))
    assert result == (None, stream.TOO_LONG)
    assert largest <= 2 * 4096


def test_the_stream_ending_before_the_end_of_the_message_is_an_incomplete_read():
    with pytest.raises(asyncio.IncompleteReadError):
        read_in_chunks(b"Subject: hi\r\nbody\r\n", [5], None, eof=True)


@pytest.mark.parametrize("max_line", [10, 11, 64, 1001])
def test_a_line_too_long_is_found_wherever_it_lies_among_short_ones(max_line):
    short = b"a" * (max_line // 3) + b"\r\n"
    for before in range(0, 4 * max_line, 7):
        head = (short * max_line)[:before]
        head = head[:head.rfind(b"\r\n") + 2] if b"\r\n" in head else b""
        for length in (max_line - 2, max_line - 1, max_line + 5, 3 * max_line):
            lines = head + b"b" * length + b"\r\n" + short * 3
            expected = stream.TOO_LONG if length + 2 > max_line else None
            assert stream._first_problem(lines, 0, 0, None, max_line) == expected, (before, length)
