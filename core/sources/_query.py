"""The read-only check of an orchestration's SQL, and how an engine's error about that SQL is reported.

The check runs before any engine sees the SQL. It reads the SQL as tokens with comments, string literals (plain,
``E'...'`` escape strings, ``$tag$...$tag$`` dollar quotes) and quoted identifiers (``"..."``, `` `...` ``) taken
out, so a ``;`` or a ``DROP`` inside one of them never counts, and an unterminated one is refused rather than
guessed at.

Accepted: exactly one statement (trailing semicolons are fine) that starts, after any opening parentheses, with

- ``SELECT``;
- ``WITH`` ... ``SELECT`` (common table expressions);
- ``VALUES`` (a literal table);
- ``FROM`` (DuckDB's FROM-first ``FROM t SELECT ...``: DuckDB is the default engine and its users write it);
- ``TABLE t`` (PostgreSQL and DuckDB read it as ``SELECT * FROM t``).

Refused, anywhere in that statement: ``INSERT``/``UPDATE``/``DELETE``/``MERGE`` (data-modifying ``WITH`` clauses),
``INTO`` (``SELECT ... INTO`` creates a table) and ``FOR UPDATE``/``FOR SHARE`` (row locks). A column literally
named ``insert``, ``update``, ``delete``, ``merge`` or ``into`` must be written quoted (``"update"``) or qualified
(``t.update``); ``insert(...)`` as a function call (MySQL's string function) and DuckDB's
``UNPIVOT ... INTO NAME k VALUE v`` are fine.

Everything else (INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, COPY, ATTACH, PRAGMA, SET, INSTALL, LOAD, CALL,
EXPORT, EXPLAIN, DESCRIBE, SHOW, ...) is refused by the first word. The check is a lexer, not a parser: the
engines are the second guard (DuckDB files are opened read-only and every DuckDB query is parsed by
``duckdb.extract_statements`` first; PostgreSQL runs in a read-only transaction; SQLite with ``query_only``).
"""

from __future__ import annotations

import logging
import re

from offramp.core.errors import ConfigError

logger = logging.getLogger(__name__)

_ACCEPTED_STARTS = frozenset({"SELECT", "WITH", "VALUES", "FROM", "TABLE"})
_WRITING_WORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "INTO"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_PARAMETER = re.compile(r"\$[0-9]+")
_LITERAL = "'"  # stands for a string literal or a quoted identifier in the token list

_MUST_BE_ONE_SELECT = "the orchestration's SQL must be one SELECT (offramp only reads from the source)"
_READ_HINT = "write one SELECT (or WITH ... SELECT) that returns the rows to send"

HINT = "fix the orchestration's SQL (`orchestrations show` prints it), then run again"


class SourceQueryError(ConfigError):
    """The engine refused or failed the orchestration's SQL.

    Attributes:
        engine_message: The engine's own message (without its caret drawing).
        line: The 1-based line of the SQL the engine pointed at, when it gave one.
        line_text: That line, as written in the SQL.
    """

    engine_message: str
    line: int | None
    line_text: str | None


def _refuse(message: str, hint: str = _READ_HINT) -> ConfigError:
    return ConfigError(message, hint=hint)


def _quoted_end(sql: str, start: int, quote: str, *, backslash: bool = False) -> int:
    """The index just after the literal or identifier opened at ``start``; doubled quotes escape a quote."""
    i = start + 1
    while i < len(sql):
        char = sql[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if sql.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1
    kind = "quoted identifier" if quote in '"`' else "string literal"
    line = sql.count("\n", 0, start) + 1
    raise _refuse(f"the orchestration's SQL has an unterminated {kind} (opened on line {line})", HINT)


def _tokens(sql: str) -> list[tuple[str, int]]:
    """Words (upper-cased) and punctuation with their offsets; literals and quoted identifiers become ``'``;
    comments, numbers' digits and whitespace are dropped."""
    tokens: list[tuple[str, int]] = []
    i, end = 0, len(sql)
    while i < end:
        char = sql[i]
        if char.isspace():
            i += 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = end if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            # PostgreSQL and DuckDB (libpg_query's scanner) nest block comments.
            depth, j = 1, i + 2
            while j < end and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                line = sql.count("\n", 0, i) + 1
                raise _refuse(f"the orchestration's SQL has an unterminated /* comment (opened on line {line})", HINT)
            i = j
        elif char in "'\"`":
            tokens.append((_LITERAL, i))
            i = _quoted_end(sql, i, char)
        elif char == "$":
            tag = _DOLLAR_TAG.match(sql, i)
            if tag:
                close = sql.find(tag.group(), tag.end())
                if close < 0:
                    line = sql.count("\n", 0, i) + 1
                    unterminated = f"an unterminated {tag.group()} string (opened on line {line})"
                    raise _refuse(f"the orchestration's SQL has {unterminated}", HINT)
                tokens.append((_LITERAL, i))
                i = close + len(tag.group())
            else:
                parameter = _PARAMETER.match(sql, i)
                tokens.append(("$", i))
                i = parameter.end() if parameter else i + 1
        elif word := _WORD.match(sql, i):
            text = word.group()
            if text in ("E", "e") and word.end() < end and sql[word.end()] == "'":
                # E'...' escape strings take backslash escapes: E'it\'s' is one literal.
                tokens.append((_LITERAL, i))
                i = _quoted_end(sql, word.end(), "'", backslash=True)
            else:
                tokens.append((text.upper(), i))
                i = word.end()
        elif number := _NUMBER.match(sql, i):
            tokens.append(("0", i))
            i = number.end()
        else:
            tokens.append((char, i))
            i += 1
    return tokens


def _statements(tokens: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    statements: list[list[tuple[str, int]]] = [[]]
    for token in tokens:
        if token[0] == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    return [statement for statement in statements if statement]


def _kind(statement: list[tuple[str, int]]) -> str:
    """The statement's first word (after opening parentheses), e.g. SELECT, DELETE."""
    for text, _ in statement:
        if text != "(":
            return text if _WORD.fullmatch(text) else "non-query"
    return "non-query"


def check_read_only_query(sql: str) -> str:
    """Accept ``sql`` if it is one read query, before any engine sees it; else raise ConfigError.

    See the module docstring for what is accepted and refused.

    Returns:
        The query without its trailing semicolons (and anything after them, which can only be comments), on the
        same lines as written, so an engine's line numbers still point into the user's SQL.

    Raises:
        ConfigError: naming the kind of statement found, and saying that the SQL must be one SELECT.
    """
    tokens = _tokens(sql)
    statements = _statements(tokens)
    if not statements:
        raise _refuse("the orchestration's SQL is empty (or only comments)")
    if len(statements) > 1:
        kinds = ", ".join(_kind(statement) for statement in statements)
        raise _refuse(f"the orchestration's SQL holds {len(statements)} statements ({kinds}); {_MUST_BE_ONE_SELECT}")
    statement = statements[0]
    kind = _kind(statement)
    if kind not in _ACCEPTED_STARTS:
        what = "is not a query" if kind == "non-query" else f"is a {kind} statement"
        raise _refuse(f"the orchestration's SQL {what}; {_MUST_BE_ONE_SELECT}")
    texts = [text for text, _ in statement]
    for index, text in enumerate(texts):
        before = texts[index - 1] if index else ""
        after = texts[index + 1] if index + 1 < len(texts) else ""
        if before == "." or after == ".":
            continue  # t.update, update.x: a column or a table, not a keyword
        if text == "FOR" and after in ("UPDATE", "SHARE", "NO", "KEY"):
            raise _refuse(f"the orchestration's SQL locks rows (SELECT ... FOR {after}); {_MUST_BE_ONE_SELECT}")
        if (
            text in _WRITING_WORDS
            and not (text == "INSERT" and after == "(")
            and not (text == "INTO" and after == "NAME")
        ):
            if text == "INTO":
                found = "SELECT ... INTO, which creates a table"
            else:
                found = f"a {text} inside the query (a data-modifying WITH clause or sub-statement)"
            raise _refuse(f"the orchestration's SQL holds {found}; {_MUST_BE_ONE_SELECT}")
    first, last = statement[0][1], statement[-1][1]
    trailing = [offset for text, offset in tokens if text == ";" and offset > last]
    query = sql[: trailing[0]] if trailing else sql
    leading = [offset for text, offset in tokens if text == ";" and offset < first]
    if leading:
        skipped = set(leading)
        # Blank out empty statements in front, keeping every other character where it is: line numbers hold.
        query = "".join(" " if index in skipped else char for index, char in enumerate(query[:first])) + query[first:]
    return query.rstrip()


_LINE_CONTEXT = re.compile(r"^LINE (\d+):")
# Words after which a quoted text names something in the SQL or the schema (kept), not a value from a row (masked).
_NAMING_WORDS = frozenset(
    "column columns table tables relation function functions type types to as schema database catalog extension "
    "view sequence index operator role name named field macro setting option parameter collation file directory "
    "alias key constraint trigger near bindings mean specifier".split()
)
_QUOTED = re.compile(r"""(?P<before>[\w.]*)(?P<gap>[\s(:]*)(?P<quoted>"[^"\n]*"|'[^'\n]*')""")
# PostgreSQL's "CONTEXT:  JSON data, line 1: Zed..." quotes the start of the value it could not parse.
_ROW_ECHO = re.compile(
    r"(?i)^(\s*(?:original line|failing row contains|key \([^)]*\)=|(?:context:\s*)?json data, line \d+)\s*:?)\s*.*$"
)
_EMAIL = re.compile(r"[^\s\"'(),;<>]+@[^\s\"'(),;<>]+\.[^\s\"'(),;<>]+")
_PHONE = re.compile(r"\+?\d[\d ().-]{5,}\d")
_MASKED = "***"


def _mask_line(line: str) -> str:
    """One line of an engine's message with what may be a row's value masked: text quoted after anything but a
    naming word (``column "email"`` stays, ``string "bob@example.com"`` does not), lines that echo a source row
    (DuckDB's ``Original Line:``, PostgreSQL's ``Failing row contains``), and anything shaped like an email or a
    phone number."""
    echo = _ROW_ECHO.match(line)
    if echo:
        return f"{echo.group(1)} {_MASKED}"

    pieces: list[str] = []
    end, kept_end = 0, -1
    for found in _QUOTED.finditer(line):
        word = found.group("before").rsplit(".", 1)[-1].lower()
        # A list of names ("a", "b") goes on after a kept name with a comma.
        listed = kept_end >= 0 and line[kept_end : found.start()].strip() == ","
        pieces.append(line[end : found.start()])
        if word in _NAMING_WORDS or listed:
            pieces.append(found.group(0))
            kept_end = found.end()
        else:
            mark = found.group("quoted")[0]
            pieces.append(f"{found.group('before')}{found.group('gap')}{mark}{_MASKED}{mark}")
            kept_end = -1
        end = found.end()
    line = "".join(pieces) + line[end:]
    line = _EMAIL.sub(_MASKED, line)
    return _PHONE.sub(_MASKED, line)


def mask_row_values(text: str) -> str:
    """An engine's message with the values it may quote from source rows masked (see :func:`_mask_line`); a line
    the engine points at with a caret (the value itself, for DuckDB's strptime) is dropped."""
    lines = text.splitlines()
    kept: list[str] = []
    for index, line in enumerate(lines):
        follows_caret = index + 1 < len(lines) and _CARET.match(lines[index + 1])
        if follows_caret and not _LINE_CONTEXT.match(line):
            continue
        kept.append(line if _LINE_CONTEXT.match(line) else _mask_line(line))
    return "\n".join(kept)


_CARET = re.compile(r"^\s*\^+\s*$")
_NAMED = re.compile(r'Referenced (?:column|table) "([^"]+)"')


def query_error(exc: BaseException, sql: str, engine: str, *, secrets: tuple[str, ...] = ()) -> SourceQueryError:
    """A SourceQueryError carrying the engine's message and the SQL line it points at.

    The line comes from the ``LINE n:`` context DuckDB's parser and libpq (PostgreSQL) print; for DuckDB's binder,
    which gives no position, from the first line naming the column or table the message quotes. The engine's own
    context line is not shown: for PostgreSQL it quotes the server-side cursor's DECLARE, not the user's SQL.

    The engine's message may quote a source row (DuckDB's CSV reader quotes the line, with its emails and phones;
    a failed cast quotes the value): such values are masked (:func:`mask_row_values`) in the error, which is
    printed and logged. The engine's own words are logged at DEBUG, so ``offramp --debug`` shows them.
    """
    text = str(exc)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    logger.debug("%s's own message: %s", engine, text)
    text = mask_row_values(text)
    message_lines: list[str] = []
    number: int | None = None
    for line in text.splitlines():
        context = _LINE_CONTEXT.match(line)
        if context:
            number = number or int(context.group(1))
        elif line.strip() and not _CARET.match(line):
            message_lines.append(" ".join(line.split()))
    message = " ".join(message_lines) or type(exc).__name__
    sql_lines = sql.splitlines()
    if number is None:
        named = _NAMED.search(message)
        if named:
            word = re.compile(rf"(?<![\w$]){re.escape(named.group(1))}(?![\w$])")
            number = next((i for i, line in enumerate(sql_lines, 1) if word.search(line)), None)
    line_text: str | None = None
    where = ""
    if number is not None and 0 < number <= len(sql_lines):
        line_text = sql_lines[number - 1]
        shown = line_text.strip()
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        where = f" (line {number}: {shown!r})"
    else:
        number = None
    full = f"the orchestration's SQL failed in {engine}: {message}{where}"
    for secret in secrets:
        if secret:  # even the user's own SQL line, should it hold the password
            full = full.replace(secret, "***")
            line_text = None if line_text is None else line_text.replace(secret, "***")
    return SourceQueryError(full, hint=HINT, engine_message=message, line=number, line_text=line_text)


__all__ = ["HINT", "SourceQueryError", "check_read_only_query", "mask_row_values", "query_error"]
