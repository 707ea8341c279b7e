"""End-to-end fixtures: the real `parex-lsp --stdio` process, driven by a pytest-lsp client over JSON-RPC."""

from __future__ import annotations

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.checks import LspSpecificationWarning

from tests.support.lsp_helpers import SERVER, make_client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a progress notification on an unknown token, or a token created twice, fails the test
    for item in items:
        if "tests/lsp/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings(f"error::{LspSpecificationWarning.__module__}."
                                                       f"{LspSpecificationWarning.__name__}"))


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, client_factory=make_client))
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()
