"""The README quotes measured figures only from docs/benchmarks.md, which `make benchmarks`
writes; a number typed by hand, or left behind when the benchmarks moved, fails here.

Two rules: every number inside the README's figures block (between ``<!-- figures -->`` and
``<!-- /figures -->``) is on the benchmarks page; and anywhere in the README, a number with
a unit of measure (%, µs, ms, x/s) is on that page too, unless it is a setting listed in
SETTINGS below (a budget or limit the code sets, not a measurement).
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README, PAGE = ROOT / "README.md", ROOT / "docs" / "benchmarks.md"
NUMBER = r"(?<![\w.])[-−]?\d[\d,]*(?:\.\d+)?"
MEASURE = re.compile(rf"({NUMBER})\s?(%|µs|ms\b|[a-z]+/s\b)")
#: settings the README states with a unit: the code's budgets and limits, not measurements
SETTINGS = {("50", "µs"), ("100", "%"), ("1.5", "rad/s"), ("2.5", "rad/s")}  # chain budget; Panda turn limits


def value(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


def page_numbers() -> set[float]:
    return {round(value(n), 9) for n in re.findall(NUMBER, PAGE.read_text())}


def on_page(number: str, unit: str, known: set[float]) -> bool:
    v = round(value(number), 9)
    return v in known or (unit == "%" and round(v / 100, 9) in known) or (unit == "%" and abs(v) in known)


def figures_block(text: str) -> str:
    blocks = re.findall(r"<!-- figures -->(.*?)<!-- /figures -->", text, re.S)
    assert blocks, "the README has no <!-- figures --> block"
    return "\n".join(blocks)


def test_every_number_in_the_figures_block_is_on_the_benchmarks_page():
    known = page_numbers()
    block = re.sub(r"`[^`]*`", "", figures_block(README.read_text()))  # commands name settings, not figures
    block = re.sub(r"\d+(?:×\d+)+", "", block)  # image sizes
    missing = sorted({n for n in re.findall(NUMBER, block) if round(value(n), 9) not in known and
                      round(value(n) / 100, 9) not in known})
    assert not missing, f"README figures not in docs/benchmarks.md (run make benchmarks, quote from it): {missing}"


def test_measured_figures_anywhere_in_the_readme_are_on_the_benchmarks_page():
    known = page_numbers()
    text = re.sub(r"`[^`]*`", "", README.read_text())
    missing = sorted({f"{n} {u}" for n, u in MEASURE.findall(text)
                      if (n, u) not in SETTINGS and not on_page(n, u, known)})
    assert not missing, f"README figures not in docs/benchmarks.md (run make benchmarks, quote from it): {missing}"


def test_the_benchmarks_page_says_how_it_was_made():
    page = PAGE.read_text()
    assert "make benchmarks" in page and "## Full runs" in page and "## Quick forms" in page
    assert re.search(r"\d{4}-\d\d-\d\d", page), "the page names the date of its runs"
