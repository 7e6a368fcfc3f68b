"""The manager's XML dialect: what its reader (os_xml) accepts, and the values it hands on.

Each expectation here was checked against the manager's own reader built from its sources.
"""

from __future__ import annotations

import pytest

from aws_wodle.config.xmlreader import (
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_RUN,
    Element,
    XmlError,
    read_elements,
)


def read(text: str | bytes) -> tuple[Element, ...]:
    """Read a document given as text (UTF-8) or bytes."""
    return read_elements(text.encode() if isinstance(text, str) else text)


def refused(text: str | bytes) -> XmlError:
    """Read a document that must be refused; return the error."""
    with pytest.raises(XmlError) as caught:
        read(text)
    return caught.value


def test_several_roots_and_text_between_them() -> None:
    """Roots follow one another; text between them, a BOM included, is skipped."""
    roots = read("\ufeffjunk <a>1</a> more junk\n<b/>\n<c x='y'>3</c> tail")
    assert [(root.tag, root.text, root.line) for root in roots] == [
        ("a", "1", 1),
        ("b", "", 2),
        ("c", "3", 3),
    ]
    assert roots[2].get("x") == "y"


def test_ampersands_and_entities_are_plain_text() -> None:
    """A literal & is fine, and &amp; is five characters: nothing is decoded."""
    (root,) = read("<command>test -f /x && cat /x &amp; &lt;done&gt;</command>")
    assert root.text == "test -f /x && cat /x &amp; &lt;done&gt;"


def test_backslash_escapes_a_less_than() -> None:
    """An odd run of backslashes makes the next < text (backslashes kept); an even run does
    not."""
    (root,) = read("<r>a \\< b \\\\\\<c</r>")
    assert root.text == "a \\< b \\\\\\<c"
    (root,) = read("<r>x\\\\<c/>y</r>")
    assert [child.tag for child in root.children] == ["c"]
    assert root.text == "y"


def test_comments_end_at_the_first_closer() -> None:
    """<! opens a comment that ends at the first --> or !>; it is cut out of the text."""
    (root,) = read("<r>a<!-- x -->b<!x!>c<!-->d</r>")
    assert root.text == "abcd"
    (root,) = read("<r>\\<!-- still a comment -->e</r>")
    assert root.text == "\\e"


def test_an_unclosed_comment_is_refused_at_the_end_of_the_file() -> None:
    """A comment with no closer (so any <!DOCTYPE>) is refused, on the file's last line."""
    error = refused('<!DOCTYPE x [<!ENTITY e "v">]>\n<r/>\n')
    assert (error.line, error.message) == (3, "comment opened on line 1 is not closed")


def test_the_text_is_what_follows_the_last_child() -> None:
    """The manager keeps only the text after an element's last child."""
    (root,) = read("<r>before<c>1</c>middle<d/>after</r>")
    assert root.text == "after"
    assert [(child.tag, child.text) for child in root.children] == [("c", "1"), ("d", "")]


def test_text_is_not_stripped_and_lines_count() -> None:
    """Text keeps its white space; each element has the line of its <."""
    (root,) = read("<r>\n  <c> v </c>\n\n  <d\n>x</d>\n</r>")
    c, d = root.children
    assert (c.text, c.line, d.line) == (" v ", 2, 4)
    assert root.text == "\n"


@pytest.mark.parametrize(
    ("document", "attributes"),
    [
        ("<a x=\"1\" y='2'/>", (("x", "1"), ("y", "2"))),
        ('<a x=  "1"/>', (("x", "1"),)),
        ('<a x="a/b&c"></a>', (("x", "a/b&c"),)),
        ('<a\tx="1"\n>t</a>', (("x", "1"),)),
    ],
)
def test_attribute_forms_accepted(document: str, attributes: tuple[tuple[str, str], ...]) -> None:
    """Quotes of either kind, space between = and the quote, any character but > inside."""
    (root,) = read(document)
    assert root.attributes == attributes


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('<a x ="1"/>', "attribute 'x' has no value (nothing may come between a name and its =)"),
        ("<a x/>", "attribute 'x' has no value"),
        ("<a x=1/>", "the value of attribute 'x' is not quoted"),
        ('<a x="1>"/>', "the value of attribute 'x' is not closed (a > may not appear inside it)"),
        ('<a x="1" x="2"/>', "attribute 'x' is set twice"),
        ('<a x="1"y="2"/>', "unexpected 'y' after x=\"1\" (expected a space, > or />)"),
        ('<a x="1', "the file ends inside the tag <a>"),
        ('<?xml version="1.0"?><r/>', "unexpected '?' after version=\"1.0\" (expected a space, >"),
    ],
)
def test_attribute_forms_refused(document: str, message: str) -> None:
    """The manager refuses these tags (an XML declaration among them)."""
    assert refused(document).message.startswith(message)


def test_a_slash_after_attributes_leaves_the_greater_than() -> None:
    """After <a x="1"/ the manager does not read the >: inside an element, it becomes text."""
    (root,) = read('<r><a x="1"/>t</r>')
    assert root.text == ">t"
    assert root.children[0].attributes == (("x", "1"),)


@pytest.mark.parametrize(
    ("document", "line", "message"),
    [
        ("<r>\n<a>x</b>\n</r>", 2, "mismatched closing tag </b> for <a> opened on line 2"),
        ("<r>x</r >", 1, "mismatched closing tag </r > for <r> opened on line 1"),
        ("</r>", 1, "a closing tag </...> where no element is open"),
        ("<r>\n<a>\n", 3, "<a> opened on line 2 is not closed before the end of the file"),
        ("<r", 1, "the file ends inside the tag <r"),
    ],
)
def test_structure_errors_name_the_line(document: str, line: int, message: str) -> None:
    """Each refusal says what is wrong, on the line where the manager finds it."""
    error = refused(document)
    assert (error.line, error.message) == (line, message)


def test_a_nul_byte_ends_a_value() -> None:
    """Values are C strings for the manager: a NUL byte ends them."""
    (root,) = read(b'<r x="a\x00b">c\x00d</r>')
    assert (root.get("x"), root.text) == ("a", "c")


def test_bytes_that_are_not_utf8_survive_as_surrogates() -> None:
    """The file is bytes: a byte that is not UTF-8 is kept, for a later stage to judge."""
    (root,) = read(b"<r>caf\xe9 caf\xc3\xa9</r>")
    assert root.text == "caf\udce9 café"


def test_the_managers_limits() -> None:
    """Text, names and values under 20480 bytes, 1024 levels, 49 attributes: no more."""
    assert read(b"<r>" + b"x" * (MAX_RUN - 1) + b"</r>")[0].text == "x" * (MAX_RUN - 1)
    assert "20480 bytes or more" in refused(b"<r>" + b"x" * MAX_RUN + b"</r>").message
    assert "20480 bytes or more" in refused(b'<r x="' + b"v" * MAX_RUN + b'"/>').message
    deep = b"<a>" * MAX_DEPTH + b"</a>" * MAX_DEPTH
    assert read(deep)[0].tag == "a"
    assert "nested more than 1024" in refused(b"<a>" + deep + b"</a>").message
    many = " ".join(f'a{i}="1"' for i in range(MAX_ATTRIBUTES))
    assert len(read(f"<e {many}/>")[0].attributes) == MAX_ATTRIBUTES
    assert "more than 49 attributes" in refused(f'<e {many} b="2"/>').message
