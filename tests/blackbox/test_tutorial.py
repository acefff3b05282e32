"""docs/tutorial.md, run as a reader would: its blocks in order, each shell
command run with `hyperc` the built CLI, ~ a temporary folder and port 8080
a free one; C, CMake and JSON blocks written to the files they name; the
outputs the page claims checked against what the commands print.  So the
tutorial cannot drift from what works.

The page's conventions (also in an HTML comment at its top):
- an sh block runs command by command; each must exit 0;
- `hyperc run ...` (or `hyperc run ... &`) is the node in a second
  terminal: started, and followed until its output shows what the page says
  (or, without a claim, its ready line); Ctrl-C (SIGINT) stops it before the
  next `hyperc run` on the same home and at the end, and it must then stop
  cleanly (exit 0);
- a trailing comment that begins with a JSON value (`# 5`, `# "at 7", ...`)
  is the command's whole output;
- comment lines right below a command are its output line by line (for a
  node, its first lines); `...` is any text within a line, and alone on its
  line any number of lines;
- `<!-- file: PATH -->` before a block: the block is written to PATH;
  `<!-- shows: PATH -->`: the block is what PATH holds at that point;
- any other block (C, CMake, JSON... without one of those) is an error."""
import json
import os
import re
import shlex
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
TUTORIAL = os.path.join(HERE, "..", "..", "docs", "tutorial.md")
READY = " ready (control socket "


# ------------------------------------------------------------ the page


class PageError(Exception):
    pass


def blocks(text):
    """The fenced blocks of a markdown text, in order: dicts with lang,
    body, line (1-based, of the opening fence) and the annotation before it
    (kind 'file' or 'shows' and its path, or None)."""
    out = []
    lines = text.split("\n")
    i = 0
    pending = None
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("<!--"):
            start = i
            while "-->" not in lines[i]:
                i += 1
                if i == len(lines):
                    raise PageError(f"line {start + 1}: unclosed comment")
            m = re.fullmatch(r"\s*<!--\s*(\w+):\s*(\S+)\s*-->\s*", line)
            if m and m.group(1) in ("file", "shows"):
                pending = (m.group(1), m.group(2), start + 1)
            elif m:
                raise PageError(f"line {start + 1}: unknown annotation "
                                f"{m.group(1)!r}")
            i += 1
            continue
        m = re.fullmatch(r"```(\w*)\s*", line)
        if m:
            start = i
            i += 1
            body = []
            while i < len(lines) and not re.fullmatch(r"```\s*", lines[i]):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise PageError(f"line {start + 1}: unclosed block")
            kind, path = (pending[0], pending[1]) if pending else (None, None)
            out.append({"lang": m.group(1), "body": "\n".join(body) + "\n",
                        "line": start + 1, "kind": kind, "path": path})
            pending = None
        elif line.strip() and pending:
            raise PageError(f"line {pending[2]}: {pending[0]}: is not "
                            "followed by a block")
        i += 1
    if pending:
        raise PageError(f"line {pending[2]}: {pending[0]}: at the end")
    return out


def split_comment(line):
    """(command, comment or None): the comment starts at a '#' outside
    quotes that begins a word, as the shell reads it."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"':
                i += 1
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
        i += 1
    return line.rstrip(), None


def json_claim(comment):
    """The JSON value a comment begins with (its text), when the rest is
    empty or prose after ',' ';' or a space; else None."""
    if not comment:
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(comment)
    except ValueError:
        return None
    rest = comment[end:]
    if rest and not (rest[0] in ",;" or rest[0].isspace()):
        return None
    return comment[:end]


def commands(body, first_line):
    """The commands of an sh block: dicts with cmd, line, claim (a JSON
    text or None) and lines (the output lines below it, or None)."""
    out = []
    raw = body.split("\n")
    i = 0
    last = None  # the command whose output lines may follow
    while i < len(raw):
        line = raw[i]
        lineno = first_line + 1 + i
        i += 1
        if not line.strip():
            last = None
            continue
        if line.lstrip().startswith("#"):
            if last is not None:
                text = line.lstrip()[1:]
                last["lines"] = (last["lines"] or []) + [
                    text[1:] if text.startswith(" ") else text]
            continue
        cmd = line
        while cmd.endswith("\\") and i < len(raw):
            cmd = cmd[:-1] + raw[i]
            i += 1
        cmd, comment = split_comment(cmd)
        last = {"cmd": cmd, "line": lineno, "claim": json_claim(comment),
                "lines": None}
        out.append(last)
    return out


def lines_pattern(expected):
    """A regex for output lines as the page writes them (see the top)."""
    pat = ""
    for e in expected:
        e = e.rstrip()
        if e.strip() == "...":
            pat += r"(?:[^\n]*\n)*?"
        else:
            pat += "[^\n]*?".join(re.escape(p) for p in e.split("...")) + "\n"
    return pat


def normal(text):
    """Output as lines: CRLF as LF, trailing blanks off, one final LF."""
    lines = [l.rstrip() for l in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "".join(l + "\n" for l in lines)


def lines_match(expected, text, whole=True):
    pat = lines_pattern(expected)
    if whole:
        return re.fullmatch(pat, normal(text)) is not None
    return re.match(pat, normal(text)) is not None


# ------------------------------------------------------- the reader


class Terminal:
    """A second terminal running `hyperc run ...` until Ctrl-C."""

    def __init__(self, cmd, env, cwd, home):
        self.cmd = cmd
        self.home = home
        self.out = []
        self.cv = threading.Condition()
        self.proc = subprocess.Popen(["bash", "-c", "exec " + cmd],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     env=env, cwd=cwd)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.out.append(line)
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def text(self):
        with self.cv:
            return "".join(self.out)

    def wait_for(self, expected, timeout=60):
        """Until the output shows the ready line and begins with
        `expected`; an AssertionError if the node ends or time runs out."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                text = "".join(self.out)
                if READY in text and (expected is None or
                                      lines_match(expected, text, False)):
                    return
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise AssertionError(
                        f"{self.cmd}: the node ended "
                        f"({self.proc.returncode}):\n{text}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.cmd}: not shown within {timeout} s: "
                        f"{expected}\n--- the node printed:\n{text}")
                self.cv.wait(min(left, 0.5))

    def ctrl_c(self):
        """Stop the node as Ctrl-C does; it must exit 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.cmd}: did not stop on Ctrl-C")
        self.reader.join(timeout=10)
        assert rc == 0, f"{self.cmd}: exited {rc}:\n{self.text()}"
        assert "hyperc: node stopped" in self.text(), self.text()


class Reader:
    """Follows the page in a home of its own: `hyperc` on PATH is the
    built CLI, ~ is `home`, 8080 is `port`."""

    def __init__(self, home, port):
        self.home = str(home)
        self.port = port
        bindir = os.path.join(self.home, ".bin")
        os.makedirs(bindir)
        # a symlink: `hyperc build` finds hypercConfig.cmake beside the
        # binary it resolves to
        os.symlink(os.path.abspath(BIN), os.path.join(bindir, "hyperc"))
        self.env = dict(os.environ, HOME=self.home,
                        PATH=bindir + os.pathsep + os.environ["PATH"])
        self.terminals = []
        self.steps = {"command": 0, "checked": 0, "node": 0, "file": 0,
                      "shows": 0}

    def port_of(self, text):
        return re.sub(r"\b8080\b", str(self.port), text)

    def path(self, p):
        assert p.startswith("~/"), f"{p}: write the path from ~"
        return os.path.join(self.home, p[2:])

    def do_block(self, b):
        where = f"docs/tutorial.md:{b['line']}"
        if b["kind"] == "file":
            dest = self.path(b["path"])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w") as f:
                f.write(b["body"])
            self.steps["file"] += 1
        elif b["kind"] == "shows":
            with open(self.path(b["path"])) as f:
                have = f.read()
            assert have == b["body"], (
                f"{where}: {b['path']} is not what the page shows:\n{have}")
            self.steps["shows"] += 1
        elif b["lang"] == "sh":
            for c in commands(b["body"], b["line"]):
                self.do_command(c)
        else:
            raise AssertionError(f"{where}: a {b['lang'] or 'plain'} block "
                                 "with neither file: nor shows: before it")

    def do_command(self, c):
        where = f"docs/tutorial.md:{c['line']}"
        cmd = self.port_of(c["cmd"])
        background = re.search(r"[^&]&$", cmd) is not None
        if background:
            cmd = cmd[:-1].rstrip()
        words = shlex.split(cmd)
        self.steps["command"] += 1
        if words[:2] == ["hyperc", "run"]:
            return self.start_node(c, cmd, words, where)
        assert not background, f"{where}: only `hyperc run` may end in &"
        r = subprocess.run(["bash", "-c", cmd], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           env=self.env, cwd=self.home, timeout=300)
        assert r.returncode == 0, (
            f"{where}: `{cmd}` exited {r.returncode}:\n{r.stdout}"
            + self.nodes_said())
        if c["lines"] is not None:
            expected = [self.port_of(l) for l in c["lines"]]
            assert lines_match(expected, r.stdout), (
                f"{where}: `{cmd}` printed\n{r.stdout}\n--- the page says:\n"
                + "\n".join(expected) + self.nodes_said())
            self.steps["checked"] += 1
        elif c["claim"] is not None:
            assert r.stdout.strip() == c["claim"], (
                f"{where}: `{cmd}` printed {r.stdout!r}; the page says "
                f"{c['claim']}" + self.nodes_said())
            self.steps["checked"] += 1

    def start_node(self, c, cmd, words, where):
        home = "hyperc-home"
        for k, w in enumerate(words):
            if w == "--home" and k + 1 < len(words):
                home = words[k + 1]
            elif w.startswith("--home="):
                home = w[len("--home="):]
        if home.startswith("~/"):
            home = self.home + home[1:]
        home = os.path.normpath(os.path.join(self.home, home))
        # one node per home: Ctrl-C in its terminal first
        for t in [t for t in self.terminals if t.home == home]:
            t.ctrl_c()
            self.terminals.remove(t)
        t = Terminal(cmd, self.env, self.home, home)
        self.terminals.append(t)
        expected = None
        if c["lines"] is not None:
            expected = [self.port_of(l) for l in c["lines"]]
        t.wait_for(expected)
        self.steps["node"] += 1
        if expected is not None:
            self.steps["checked"] += 1

    def nodes_said(self):
        return "".join(f"\n--- node `{t.cmd}` printed:\n{t.text()}"
                       for t in self.terminals)

    def finish(self, check=True):
        """Ctrl-C in every node's terminal (the page's last step)."""
        errors = []
        for t in self.terminals:
            try:
                t.ctrl_c()
            except AssertionError as e:
                errors.append(str(e))
        self.terminals = []
        if check and errors:
            raise AssertionError("\n".join(errors))


def test_tutorial(tmp_path):
    with open(TUTORIAL) as f:
        page = blocks(f.read())
    reader = Reader(tmp_path / "home", free_port())
    try:
        for b in page:
            reader.do_block(b)
    except BaseException:
        reader.finish(check=False)
        raise
    reader.finish()
    # the page is what it is meant to be: nodes, files written and checked,
    # outputs compared (a page whose blocks the test stopped seeing fails)
    s = reader.steps
    assert s["node"] >= 2 and s["file"] >= 3 and s["shows"] >= 1, s
    assert s["checked"] >= 8, s


# ------------------------------------------- the conventions themselves


def test_output_lines_and_ellipses():
    out = "[1/2] configure\n-- cmake\r\nPASS basic.sh\n1 passed, 0 failed\n"
    assert lines_match(["...", "PASS basic.sh", "1 passed, 0 failed"], out)
    assert not lines_match(["...", "PASS basic.sh", "2 passed, 0 failed"],
                           out)
    # the lines must be the whole output, unless `...` says otherwise
    assert not lines_match(["PASS basic.sh", "1 passed, 0 failed"], out)
    assert not lines_match(["...", "PASS basic.sh"], out)
    assert lines_match(["[1/2] ...", "...", "1 passed, ... failed"], out)
    # within a line `...` does not reach the next one
    assert not lines_match(["[1/2] ... basic.sh", "..."], out)
    # a node's output: its first lines
    node = "Tue 01:44:51 kernel: a\nTue 01:44:51 t: INFO t: starting at 5\nx\n"
    assert lines_match(["...", "... INFO t: starting at 5"], node, False)
    assert not lines_match(["...", "... INFO t: starting at 0"], node, False)


def test_claims_and_commands():
    assert json_claim("5") == "5"
    assert json_claim("5, as a local request") == "5"
    assert json_claim('"tally is at 7"') == '"tally is at 7"'
    assert json_claim("{\"a\": [1]} (after the build)") == "{\"a\": [1]}"
    assert json_claim("writes ~/apps/tally: a package") is None
    assert json_claim("5x") is None
    assert json_claim(None) is None
    cmds = commands(
        "mkdir -p ~/x\n"
        "curl -s -d '{\"a#b\": 1}' url   # 5, said\n"
        "hyperc test ~/x   # builds it\n"
        "# ...\n"
        "# PASS a.sh\n"
        "\n"
        "# prose, not output\n"
        "hyperc inject p \\\n"
        "  '\"GetCount\"'   # \"x # y\"\n", 10)
    assert [c["cmd"] for c in cmds] == [
        "mkdir -p ~/x", "curl -s -d '{\"a#b\": 1}' url", "hyperc test ~/x",
        "hyperc inject p   '\"GetCount\"'"]
    assert [c["claim"] for c in cmds] == [None, "5", None, '"x # y"']
    assert cmds[2]["lines"] == ["...", "PASS a.sh"]
    assert cmds[3]["lines"] is None and cmds[3]["line"] == 18


def test_blocks_and_annotations():
    page = ("text\n<!-- a note\nspanning ```sh lines -->\n"
            "<!-- file: ~/a/b.c -->\n```c\nint x;\n```\n\n"
            "```sh\necho hi   # \"hi\"\n```\n")
    b = blocks(page)
    assert [(x["lang"], x["kind"], x["path"], x["line"]) for x in b] == [
        ("c", "file", "~/a/b.c", 5), ("sh", None, None, 9)]
    assert b[0]["body"] == "int x;\n"
    with pytest.raises(PageError, match="unknown annotation"):
        blocks("<!-- write: ~/x -->\n```c\n```\n")
    with pytest.raises(PageError, match="not followed by a block"):
        blocks("<!-- file: ~/x -->\nprose\n```c\n```\n")
    with pytest.raises(PageError, match="unclosed block"):
        blocks("```sh\necho\n")
    # a block the reader is not told what to do with fails the walk
    r = Reader.__new__(Reader)
    with pytest.raises(AssertionError, match="neither file: nor shows:"):
        r.do_block({"lang": "c", "body": "", "line": 3, "kind": None,
                    "path": None})
