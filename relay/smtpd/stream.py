"""A session's stream: command lines one at a time within the turn budget, a message's content in bulk.

aiosmtpd reads the content of a message line by line, an await and a few list operations per line: a 10 KB
message is some 150 of them, as much CPU as everything else the relay does for the message. Here the content is
taken from the stream's buffer as it arrives, every complete line at once, with the same rules (RFC 5321 4.1.1.4,
4.5.2, 4.5.3.1.6): a line is ended by CRLF only, a line holding a lone dot ends the content, a dot that begins a
line is removed, and a line too long or content too large is read to its end and then refused.

Content past a size goes to a temporary file as it arrives (SpooledContent): forty 24 MB messages at once held
several copies each in memory (the lines read, their join, the unstuffed copy), 846 MiB at the peak, and the
allocator kept much of it afterwards (bench/spool_memory.py).
"""

import asyncio
import tempfile

from relay.smtpd import fairloop

CRLF = b"\r\n"
END = b"\r\n.\r\n"

TOO_LONG = "too long"
TOO_MUCH = "too much"


class SessionReader(fairloop.FairReader):
    stopped = False  # a reply closed the session: nothing more of the client's is read

    def stop(self) -> None:
        """After a closing reply (221, 421, ...): whatever the client pipelined behind is never run."""
        self.stopped = True
        self._buffer.clear()

    async def readuntil(self, separator=b"\n"):
        if self.stopped:
            raise asyncio.CancelledError  # ends the session's task as a lost connection does
        line = await super().readuntil(separator)
        if self.stopped:
            raise asyncio.CancelledError
        return line

    async def read_content(self, *, max_bytes: int | None, max_line: int,
                           spool_after: int | None = None) -> tuple["bytes | SpooledContent | None", str | None]:
        """Read a message's content up to and including the line with a lone dot.

        Content longer than `spool_after` octets (no spooling when None or 0) is returned as SpooledContent.

        Returns (content with its transparency dots removed, None), or (None, TOO_LONG) when a line is longer than
        `max_line` octets with its CRLF, or (None, TOO_MUCH) when the lines, as sent, add up to more than
        `max_bytes` octets (no limit when None or 0); the first of the two to happen is the one reported. Raises
        IncompleteReadError when the stream ends first.
        """
        parts: list[bytes] = []
        kept = 0  # octets in parts
        spool = None
        size = 0  # octets of the content's lines as sent, CRLF included
        carried = 0  # octets of the current line already thrown away (it is too long)
        problem = None
        while True:
            if self._exception is not None:
                raise self._exception
            buffer = self._buffer
            complete = buffer.rfind(CRLF) + 2  # whole lines only: a CRLF may arrive split in two
            if complete > 1:
                if not carried and buffer.startswith(b".\r\n"):
                    end = 0
                else:
                    end = buffer.find(END, 0, complete) + 2  # the content ends after the CRLF before the dot
                    if end == 1:
                        end = None
                lines_end = complete if end is None else end
                if problem is None and lines_end:
                    lines = bytes(buffer[:lines_end])
                    problem = _first_problem(lines, size, carried, max_bytes, max_line)
                    if problem is None:
                        if spool is not None:
                            spool.write(unstuff(lines))  # whole lines: each chunk begins at a line's start
                        else:
                            parts.append(lines)
                            kept += len(lines)
                            if spool_after and kept > spool_after:
                                spool = SpooledContent()
                                spool.write(unstuff(b"".join(parts)))
                                parts = []
                size += lines_end
                carried = 0
                del buffer[:lines_end if end is None else end + 3]
                if end is not None:
                    self._maybe_resume_transport()
                    break
            elif len(buffer) + carried > max_line:  # a line already too long before its end: keep its last octet
                carried += len(buffer) - 1
                size += len(buffer) - 1
                del buffer[:-1]
            self._maybe_resume_transport()
            if self._eof:
                raise asyncio.IncompleteReadError(bytes(buffer), None)
            await self._wait_for_data("read_content")
        if problem is not None:
            if spool is not None:
                spool.close()
            return None, problem
        if spool is not None:
            return spool, None
        return unstuff(b"".join(parts)), None


class SpooledContent:
    """A message's content in an unnamed temporary file: len() is its size, read() its octets.

    Written on the event loop's thread (page-cache writes of a few hundred KB at most each); read, where it is
    needed whole, on the database threads. The file goes with the object (closed when it is freed)."""

    def __init__(self):
        self.file = tempfile.TemporaryFile(prefix="relay-content-")
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def __len__(self) -> int:
        return self.size

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def header_block(self) -> bytes:
        """The octets up to and including the blank line that ends the header (RFC 5322 2.1), or all of them."""
        self.file.seek(0)
        block = b""
        while True:
            chunk = self.file.read(64 * 1024)
            if not chunk:
                return block
            start = max(0, len(block) - 3)
            block += chunk
            if block.startswith(b"\r\n"):  # no header at all
                return b"\r\n"
            end = block.find(b"\r\n\r\n", start)
            if end >= 0:
                return block[:end + 4]

    def close(self) -> None:
        self.file.close()


def _first_problem(lines: bytes, size: int, carried: int, max_bytes: int | None, max_line: int) -> str | None:
    """The problem, if any, of these complete lines, in the order aiosmtpd meets them: line by line, the size first.

    `size` counts the octets before them (`carried` of which belong to their first line)."""
    over_size = bool(max_bytes) and size + len(lines) > max_bytes
    if not over_size and not carried and _short_lines(lines, max_line):
        return None
    split = lines.split(CRLF)[:-1]
    if not over_size and not carried and max(map(len, split)) + 2 <= max_line:
        return None
    offset = size
    for number, line in enumerate(split):
        length = len(line) + 2 + (carried if number == 0 else 0)
        offset += len(line) + 2
        if max_bytes and offset > max_bytes:
            return TOO_MUCH
        if length > max_line:
            return TOO_LONG
    return None


def _short_lines(lines: bytes, max_line: int) -> bool:
    """True when no line is longer than `max_line` with its CRLF, False when one may be, without splitting the
    lines (a third of the reading of a message's content): windows of half a line's length, one every other half,
    each holding a CRLF. A line of max_line - 1 octets or more before its CRLF holds a whole window."""
    window = max_line // 2
    step = max_line - window
    if window < 2:
        return False
    find = lines.find
    for start in range(0, len(lines), step):
        if find(CRLF, start, start + window) < 0:
            return False
    return True


def unstuff(content: bytes) -> bytes:
    """Remove the dot a client put before every line that begins with one (RFC 5321 4.5.2)."""
    if content.startswith(b"."):
        content = content[1:]
    return content.replace(b"\r\n.", CRLF)
