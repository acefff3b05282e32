"""docs/tutorial.md, run as a reader would: its blocks in order, each shell
command run with `hyperc` the built CLI, ~ a temporary folder and port 8080
a free one; C, CMake and JSON blocks written to the files they name; the
outputs the page claims checked against what the commands print.  So the
tutorial cannot drift from what works.

The page's conventions (also in an HTML comment at its top):
- an sh block runs command by command; each must exit 0;
- `hyperc run ...` and `hyperc watch ...` run in terminals of their own:
  started, and followed until their output shows what the page says (or,
  without a claim, their ready line: the node's, or watch's `watching`);
  Ctrl-C (SIGINT) stops one at a `ctrl-c: COMMAND` comment (the latest
  terminal whose command begins with COMMAND), a node also before the next
  `hyperc run` on the same home, and every one at the end (the latest
  first); each must then stop cleanly (exit 0);
- a trailing comment that begins with a JSON value (`# 5`, `# "at 7", ...`)
  is the command's whole output;
- comment lines right below a command are its output line by line (for a
  terminal, its first lines); `...` is any text within a line, and alone on
  its line any number of lines;
- `<!-- file: PATH -->` before a block: the block is written to PATH;
  `append: PATH`: added at its end, after an empty line; `shows: PATH`: the
  block is what PATH holds at that point; `prints: COMMAND`: the block is
  what that command's terminal prints next (the walk waits for it);
- a write into the folder a running `hyperc watch` watches must be followed
  by a `prints:` of that watch through its `installed` (or `build failed`)
  line before anything else runs: the reader waits for the reinstall;
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


# the annotations a block follows; `ctrl-c: COMMAND` stands alone
ANNOTATIONS = ("file", "append", "shows", "prints")


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
            m = re.fullmatch(r"\s*<!--\s*([\w-]+):\s*(.*?)\s*-->\s*", line)
            if m and pending:
                raise PageError(f"line {pending[2]}: {pending[0]}: is not "
                                "followed by a block")
            if m and m.group(1) in ANNOTATIONS:
                pending = (m.group(1), m.group(2), start + 1)
            elif m and m.group(1) == "ctrl-c":
                out.append({"lang": None, "body": None, "line": start + 1,
                            "kind": "ctrl-c", "path": m.group(2)})
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


def lines_prefix(expected, text):
    """How many lines of `text` its beginning `expected` takes, or None
    when it does not begin so."""
    m = re.match(lines_pattern(expected), normal(text))
    return None if m is None else m.group(0).count("\n")


# ------------------------------------------------------- the reader


# what a terminal prints once it serves
READY = {"run": " ready (control socket ", "watch": "hyperc watch: watching "}
# the lines that end a rebuild of `hyperc watch`
WATCH_DONE = ("hyperc watch: installed ", "hyperc watch: the build failed")


class Terminal:
    """A terminal of its own running `hyperc run ...` (kind "run") or
    `hyperc watch ...` ("watch") until Ctrl-C."""

    def __init__(self, kind, page_cmd, cmd, env, cwd, home, folder=None):
        self.kind = kind
        self.page_cmd = page_cmd  # as the page writes it
        self.cmd = cmd
        self.home = home
        self.folder = folder  # what a watch watches
        self.writes = []  # written in folder since the page showed a rebuild
        self.seen = 0  # lines of its output the page has shown
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

    def wait_for(self, expected, ready=True, timeout=60):
        """Until the output not yet shown begins with `expected` (and, with
        ready, the terminal has printed its ready line); those lines are
        then shown.  An AssertionError if it ends or time runs out."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                n = 0 if expected is None else lines_prefix(
                    expected, "".join(self.out[self.seen:]))
                if n is not None and (not ready or
                                      READY[self.kind] in "".join(self.out)):
                    self.seen += n
                    return
                text = "".join(self.out)
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise AssertionError(
                        f"{self.cmd}: ended ({self.proc.returncode}):\n"
                        f"{text}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.cmd}: not shown within {timeout} s: "
                        f"{expected}\n--- after the first {self.seen} lines "
                        f"of what it printed:\n{text}")
                self.cv.wait(min(left, 0.5))

    def ctrl_c(self):
        """Stop it as Ctrl-C does; it must exit 0 (a node saying so)."""
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
        if self.kind == "run":
            assert "hyperc: node stopped" in self.text(), self.text()


def option(words, name, default):
    """The value of `--name V` or `--name=V` among words."""
    for k, w in enumerate(words):
        if w == name and k + 1 < len(words):
            return words[k + 1]
        if w.startswith(name + "="):
            return w[len(name) + 1:]
    return default


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
        self.steps = {"command": 0, "checked": 0, "node": 0, "watch": 0,
                      "file": 0, "append": 0, "shows": 0, "prints": 0,
                      "ctrl-c": 0}

    def port_of(self, text):
        return re.sub(r"\b8080\b", str(self.port), text)

    def path(self, p):
        assert p.startswith("~/"), f"{p}: write the path from ~"
        return os.path.join(self.home, p[2:])

    def local(self, p):
        """A path as a command's argument, from ~ (the shell's cwd)."""
        if p == "~" or p.startswith("~/"):
            p = self.home + p[1:]
        return os.path.realpath(os.path.join(self.home, p))

    def do_block(self, b):
        where = f"docs/tutorial.md:{b['line']}"
        if b["kind"] in ("file", "append"):
            dest = self.path(b["path"])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if b["kind"] == "file":
                text = b["body"]
            else:
                with open(dest) as f:
                    have = f.read()
                text = have + ("" if have.endswith("\n\n") else "\n") + \
                    b["body"]
            with open(dest, "w") as f:
                f.write(text)
            self.wrote(dest)
            self.steps[b["kind"]] += 1
        elif b["kind"] == "shows":
            with open(self.path(b["path"])) as f:
                have = f.read()
            assert have == b["body"], (
                f"{where}: {b['path']} is not what the page shows:\n{have}")
            self.steps["shows"] += 1
        elif b["kind"] == "prints":
            self.prints(self.terminal(b["path"], where), b["body"], where)
        elif b["kind"] == "ctrl-c":
            self.settled(where)
            t = self.terminal(b["path"], where)
            t.ctrl_c()
            self.terminals.remove(t)
            self.steps["ctrl-c"] += 1
        elif b["lang"] == "sh":
            for c in commands(b["body"], b["line"]):
                self.do_command(c)
        else:
            raise AssertionError(f"{where}: a {b['lang'] or 'plain'} block "
                                 "with no file:, append:, shows: or prints: "
                                 "before it")

    def terminal(self, begins, where):
        """The latest terminal whose command, as the page writes it, begins
        with `begins`."""
        for t in reversed(self.terminals):
            if t.page_cmd.startswith(begins):
                return t
        raise AssertionError(f"{where}: no terminal runs `{begins}...`")

    def wrote(self, path):
        """A file was saved: a watch whose folder holds it will rebuild
        (build/ and hidden folders aside, as watch skips them)."""
        for t in self.terminals:
            if t.kind != "watch":
                continue
            rel = os.path.relpath(os.path.realpath(path), t.folder)
            parts = rel.split(os.sep)
            if parts[0] in ("..", "build") or any(
                    p.startswith(".") for p in parts):
                continue
            t.writes.append(rel)

    def settled(self, where):
        """Nothing runs while a watch has a rebuild the page has not shown:
        the reader waits for it."""
        for t in self.terminals:
            assert not t.writes, (
                f"{where}: {', '.join(t.writes)} saved while `{t.page_cmd}` "
                "watches: show what it prints through its `installed` line "
                "(a `prints:` block) before going on")

    def prints(self, t, body, where):
        expected = [self.port_of(l) for l in body.rstrip("\n").split("\n")]
        if t.writes:
            assert expected[-1].startswith(WATCH_DONE), (
                f"{where}: `{t.page_cmd}` rebuilds what was saved "
                f"({', '.join(t.writes)}): show through the line that "
                f"ends it (one of {WATCH_DONE})")
        t.wait_for(expected, ready=False, timeout=120)
        t.writes = []
        self.steps["prints"] += 1
        self.steps["checked"] += 1

    def do_command(self, c):
        where = f"docs/tutorial.md:{c['line']}"
        self.settled(where)
        cmd = self.port_of(c["cmd"])
        background = re.search(r"[^&]&$", cmd) is not None
        if background:
            cmd = cmd[:-1].rstrip()
        words = shlex.split(cmd)
        self.steps["command"] += 1
        if words[:2] in (["hyperc", "run"], ["hyperc", "watch"]):
            return self.start_terminal(c, cmd, words, where)
        assert not background, (
            f"{where}: only `hyperc run` or `hyperc watch` may end in &")
        r = subprocess.run(["bash", "-c", cmd], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           env=self.env, cwd=self.home, timeout=300)
        assert r.returncode == 0, (
            f"{where}: `{cmd}` exited {r.returncode}:\n{r.stdout}"
            + self.terminals_said())
        if c["lines"] is not None:
            expected = [self.port_of(l) for l in c["lines"]]
            assert lines_match(expected, r.stdout), (
                f"{where}: `{cmd}` printed\n{r.stdout}\n--- the page says:\n"
                + "\n".join(expected) + self.terminals_said())
            self.steps["checked"] += 1
        elif c["claim"] is not None:
            assert r.stdout.strip() == c["claim"], (
                f"{where}: `{cmd}` printed {r.stdout!r}; the page says "
                f"{c['claim']}" + self.terminals_said())
            self.steps["checked"] += 1

    def start_terminal(self, c, cmd, words, where):
        kind = words[1]
        home = self.local(option(words, "--home", "hyperc-home"))
        folder = None
        if kind == "run":
            # one node per home: Ctrl-C in its terminal first
            for t in [t for t in self.terminals
                      if t.kind == "run" and t.home == home]:
                t.ctrl_c()
                self.terminals.remove(t)
        else:
            args = [w for k, w in enumerate(words[2:], 2)
                    if not w.startswith("-") and
                    words[k - 1] not in ("--home", "--port", "--name")]
            folder = self.local(args[-1] if args else ".")
        t = Terminal(kind, c["cmd"], cmd, self.env, self.home, home, folder)
        self.terminals.append(t)
        expected = None
        if c["lines"] is not None:
            expected = [self.port_of(l) for l in c["lines"]]
        t.wait_for(expected, timeout=120 if kind == "watch" else 60)
        self.steps["node" if kind == "run" else "watch"] += 1
        if expected is not None:
            self.steps["checked"] += 1

    def terminals_said(self):
        return "".join(f"\n--- `{t.cmd}` printed:\n{t.text()}"
                       for t in self.terminals)

    def finish(self, check=True):
        """Ctrl-C in every terminal, the latest first (the page's last
        step)."""
        errors = []
        for t in reversed(self.terminals):
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
        reader.settled("docs/tutorial.md: the end")
    except BaseException:
        reader.finish(check=False)
        raise
    reader.finish()
    # the page is what it is meant to be: nodes, a watch, files written,
    # edited and checked, outputs compared (a page whose blocks the test
    # stopped seeing fails)
    s = reader.steps
    assert s["node"] >= 4 and s["file"] >= 4 and s["shows"] >= 1, s
    assert s["watch"] >= 1 and s["append"] >= 1 and s["prints"] >= 2, s
    assert s["ctrl-c"] >= 1, s
    assert s["checked"] >= 12, s


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
    # what a terminal printed next: how many lines the page's take
    assert lines_prefix(["...", "... INFO t: starting at 5"], node) == 2
    assert lines_prefix(["Tue ... kernel: a"], node) == 1
    assert lines_prefix(["...", "x", "..."], node) == 3
    assert lines_prefix(["...", "y"], node) is None


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
    # edits, a terminal's output, Ctrl-C (which stands alone)
    b = blocks("<!-- append: ~/a/b.c -->\n```c\nint y;\n```\n"
               "<!-- prints: hyperc watch -->\n```\nhyperc watch: x\n```\n"
               "<!--  ctrl-c: hyperc watch  -->\n\n```sh\necho\n```\n")
    assert [(x["lang"], x["kind"], x["path"], x["line"]) for x in b] == [
        ("c", "append", "~/a/b.c", 2), ("", "prints", "hyperc watch", 6),
        (None, "ctrl-c", "hyperc watch", 9), ("sh", None, None, 11)]
    with pytest.raises(PageError, match="prints: is not followed"):
        blocks("<!-- prints: hyperc watch -->\n<!-- ctrl-c: hyperc watch -->"
               "\n```\nx\n```\n")
    # a block the reader is not told what to do with fails the walk
    r = Reader.__new__(Reader)
    with pytest.raises(AssertionError, match="no file:, append:, shows:"):
        r.do_block({"lang": "c", "body": "", "line": 3, "kind": None,
                    "path": None})


def test_watch_rules(tmp_path):
    """While a watch runs, a save in its folder must be followed by what it
    prints through the end of the rebuild, before anything else runs."""
    r = Reader.__new__(Reader)
    r.home, r.port, r.env = str(tmp_path), 8080, dict(os.environ)
    r.steps = {"file": 0, "append": 0, "prints": 0, "checked": 0,
               "command": 0}
    app = tmp_path / "apps" / "tally"
    (app / "build").mkdir(parents=True)
    (app / "tally.c").write_text("int x;\n")
    t = Terminal.__new__(Terminal)
    t.kind, t.page_cmd = "watch", "hyperc watch --home ~/h ~/apps/tally"
    t.folder, t.writes, t.seen = str(app), [], 0
    t.cv = threading.Condition()
    t.out = ["hyperc watch: watching /x (Ctrl-C stops)\n",
             "hyperc watch: /x/tally.c changed; rebuilding\n",
             "[2/2] build\n",
             "hyperc watch: installed tally:hyperc.os in 2 ms; reinstalled: "
             "tally:tally:hyperc.os;\n"]
    t.seen = 1
    r.terminals = [t]

    def block(kind, path, body="int y;\n"):
        r.do_block({"lang": "c", "body": body, "line": 7, "kind": kind,
                    "path": path})

    # saves watch does not rebuild for: build/, hidden folders, elsewhere
    for p in ("~/apps/tally/build/x.c", "~/apps/tally/.git/x", "~/other.c"):
        block("file", p)
    assert t.writes == []
    r.do_command({"cmd": "true", "line": 8, "claim": None, "lines": None})
    block("append", "~/apps/tally/tally.c")
    assert (app / "tally.c").read_text() == "int x;\n\nint y;\n"
    assert t.writes == ["tally.c"]
    with pytest.raises(AssertionError, match="saved while `hyperc watch"):
        r.do_command({"cmd": "true", "line": 9, "claim": None,
                      "lines": None})
    with pytest.raises(AssertionError, match="saved while `hyperc watch"):
        block("ctrl-c", "hyperc watch")
    # showing less than the whole rebuild does not let the walk go on
    with pytest.raises(AssertionError, match="show through the line"):
        block("prints", "hyperc watch",
              "hyperc watch: .../tally.c changed; rebuilding\n")
    block("prints", "hyperc watch",
          "hyperc watch: .../tally.c changed; rebuilding\n...\n"
          "hyperc watch: installed ... reinstalled: tally:tally:hyperc.os;\n")
    assert t.writes == [] and t.seen == 4
    r.do_command({"cmd": "true", "line": 10, "claim": None, "lines": None})
    with pytest.raises(AssertionError, match="no terminal runs `hyperc run"):
        block("prints", "hyperc run", "x\n")
