import pytest

from conftest import REPO_ROOT
from daily_bids.schema import contract_table_markdown
from daily_bids.settings import settings_table_markdown
from daily_bids.validation import quarantine_reasons_markdown


@pytest.mark.parametrize("marker, generate", [("settings-table", settings_table_markdown),
                                              ("contract-table", contract_table_markdown),
                                              ("quarantine-reasons", quarantine_reasons_markdown)])
def test_readme_tables_are_the_ones_the_code_defines(marker, generate):
    readme = (REPO_ROOT / "README.md").read_text()
    between = readme.split(f"<!-- {marker} -->\n", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    assert between.strip() == generate()


def test_platform_folder_is_not_a_python_package():
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()
