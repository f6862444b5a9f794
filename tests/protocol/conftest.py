import pytest

from mqd_harness import ALL_SERVERS, Server


@pytest.fixture(autouse=True)
def stop_what_the_test_started():
    """A test's own servers are stopped after it, whatever happened in it
    (module-scoped ones were made before this fixture began)."""
    first = len(ALL_SERVERS)
    yield
    for s in ALL_SERVERS[first:]:
        if hasattr(s, "proc") and s.proc.poll() is None:
            s.stop()
    del ALL_SERVERS[first:]


@pytest.fixture(scope="module")
def server():
    """One server per test module, default settings but a cache of 100."""
    s = Server()
    yield s
    status = s.stop()
    # under the sanitizers a leak or an error makes this non-zero
    assert status == 0, s.stderr()


@pytest.fixture
def start():
    """Starts servers with special flags; stops them (checking a clean exit)."""
    servers = []

    def _start(*args, **kwargs):
        servers.append(Server(*args, **kwargs))
        return servers[-1]
    yield _start
    for s in servers:
        status = s.stop()
        assert status == 0, s.stderr()


@pytest.fixture
def clients(server):
    """Makes clients of the module's server and closes them after the test."""
    made = []

    def _client():
        made.append(server.client())
        return made[-1]
    yield _client
    for c in made:
        c.close()


@pytest.fixture
def topic(request):
    """A topic name no other test uses."""
    return "t-" + request.node.name
