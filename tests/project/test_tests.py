"""Rules the test suite itself keeps."""

from collections import Counter

from support.paths import ROOT


def test_every_test_file_has_a_name_of_its_own():
    # The test folders are no packages: pytest imports each file by its name, and a second file of the same name
    # in another folder stops the whole run at collection.
    names = Counter(path.name for path in (ROOT / "tests").rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
