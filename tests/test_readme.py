from conftest import REPO_ROOT
from daily_bids.settings import settings_table_markdown


def test_readme_settings_table_is_the_one_the_code_defines():
    readme = (REPO_ROOT / "README.md").read_text()
    between = readme.split("<!-- settings-table -->\n", 1)[1].split("<!-- /settings-table -->", 1)[0]
    assert between.strip() == settings_table_markdown()


def test_platform_folder_is_not_a_python_package():
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()
