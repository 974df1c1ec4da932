"""What the tests of the app's screens share: the server bound to loopback, and a screen over a run store.

Imported into a test module, an autouse fixture here applies to every test there: `loopback_address`
for the whole module (module fixtures that click through screens need it too), `loopback_each_test`
where tests change the server address themselves."""
import contextlib

import pytest
from streamlit.testing.v1 import AppTest


@contextlib.contextmanager
def bound_to_loopback():
    """These screens run as on a developer's machine: bound explicitly to loopback (no sign-in)."""
    from streamlit import config
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    try:
        yield
    finally:
        config.set_option("server.address", before)


@pytest.fixture(autouse=True, scope="module")
def loopback_address():
    with bound_to_loopback():
        yield


@pytest.fixture(autouse=True)
def loopback_each_test():
    with bound_to_loopback():
        yield


def page(name, store, monkeypatch, timeout=120):
    """app_pages/NAME.py as an AppTest over the run store STORE."""
    monkeypatch.setenv("HRM_GATE_STORE", str(store))
    return AppTest.from_file(f"../app_pages/{name}.py", default_timeout=timeout)
