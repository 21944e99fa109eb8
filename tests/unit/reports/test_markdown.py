"""summary.md: table cells escaped for GitHub (no tag survives), counts in words."""

from __future__ import annotations

import pytest

from audit_bedrock.reports.markdown import cell, render
from tests.support.report_samples import HOSTILE, context, sample_result


@pytest.mark.parametrize(("text", "md"), [
    pytest.param("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;", id="tag"),
    pytest.param("a | b", r"a \| b", id="pipe"),
    pytest.param("R&D *bold* `code`", r"R&amp;D \*bold\* \`code\`", id="markdown-and-amp"),
    pytest.param("two\nlines", "two lines", id="one-line"),
    pytest.param("data-science #1 +x", "data-science #1 +x", id="harmless-mid-cell"),
    pytest.param("![i](javascript:x)", r"\!\[i\]\(javascript:x\)", id="image-link"),
])
def test_cell(text: str, md: str) -> None:
    assert cell(text) == md


def test_summary_has_no_live_markup_and_words_for_counts() -> None:
    md = render(sample_result(), context()).decode()
    assert "<img" not in md and "onerror=" in md  # the name is there, as text
    assert HOSTILE not in md
    assert "| rule | worst open finding | title | accounts |" in md
    assert "(s)" not in md and "| 1 account |" in md and "42 API calls" in md
