"""A session's stream: command lines one at a time within the turn budget, a message's content in bulk.

aiosmtpd reads the content of a message line by line, an await and a few list operations per line: a 10 KB
message is some 150 of them, as much CPU as everything else the relay does for the message. Here the content is
taken from the stream's buffer as it arrives, every complete line at once, with the same rules (RFC 5321 4.1.1.4,
4.5.2, 4.5.3.1.6): a line is ended by CRLF only, a line holding a lone dot ends the content, a dot that begins a
line is removed, and a line too long or content too large is read to its end and then refused.
"""

import asyncio

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

    async def read_content(self, *, max_bytes: int | None, max_line: int) -> tuple[bytes | None, str | None]:
        """Read a message's content up to and including the line with a lone dot.

        Returns (content with its transparency dots removed, None), or (None, TOO_LONG) when a line is longer than
        `max_line` octets with its CRLF, or (None, TOO_MUCH) when the lines, as sent, add up to more than
        `max_bytes` octets (no limit when None or 0); the first of the two to happen is the one reported. Raises
        IncompleteReadError when the stream ends first.
        """
        parts: list[bytes] = []
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
                        parts.append(lines)
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
            return None, problem
        return unstuff(b"".join(parts)), None


def _first_problem(lines: bytes, size: int, carried: int, max_bytes: int | None, max_line: int) -> str | None:
    """The problem, if any, of these complete lines, in the order aiosmtpd meets them: line by line, the size first.

    `size` counts the octets before them (`carried` of which belong to their first line)."""
    over_size = bool(max_bytes) and size + len(lines) > max_bytes
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


def unstuff(content: bytes) -> bytes:
    """Remove the dot a client put before every line that begins with one (RFC 5321 4.5.2)."""
    if content.startswith(b"."):
        content = content[1:]
    return content.replace(b"\r\n.", CRLF)
