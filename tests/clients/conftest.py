"""Fixtures of the client suite: where the simulated tenant runs and what it holds.

`scripts/pyclients test` starts `enroll sim --tls` twice (plain, and throttled) on
examples/tenant.json and passes them in the environment:

    PYCLIENTS_SIM_URL            https://127.0.0.1:PORT of the plain simulator
    PYCLIENTS_SIM_THROTTLED_URL  https://127.0.0.1:PORT of the one started with --throttle-rps
    PYCLIENTS_SIM_TENANT_ID      the tenant id both answer for
    SSL_CERT_FILE, REQUESTS_CA_BUNDLE   the CA file `enroll sim --tls` wrote

Nothing here talks to anything but these two simulators; no proxy or shim sits between the
clients and them.
"""
import base64
import json
import os
import pathlib
import time

import httpx
import pytest
import requests
from azure.identity import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLIENT_ID = "enroll-sim-client"
CLIENT_SECRET = "enroll-sim-secret"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite through scripts/pyclients test")
    return value


@pytest.fixture(scope="session")
def base_url():
    return env("PYCLIENTS_SIM_URL")


@pytest.fixture(scope="session")
def throttled_url():
    return env("PYCLIENTS_SIM_THROTTLED_URL")


@pytest.fixture(scope="session")
def tenant_id():
    return env("PYCLIENTS_SIM_TENANT_ID")


@pytest.fixture(scope="session")
def tenant():
    """The snapshot both simulators started from."""
    return json.loads((ROOT / "examples" / "tenant.json").read_text(encoding="utf-8"))


def claims(token):
    """The claims of a JWT, unverified."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class CountingSession(requests.Session):
    """A requests session that records every request it sends: (method, url)."""

    def __init__(self):
        super().__init__()
        self.sent = []

    def request(self, method, url, *args, **kwargs):
        self.sent.append((method.upper(), url))
        return super().request(method, url, *args, **kwargs)


class Recorder(httpx.AsyncHTTPTransport):
    """The transport under the SDK's middleware (whose retry handler resends a throttled
    request itself): records each request and answer on the wire with the time it happened."""

    def __init__(self):
        super().__init__()
        self.events = []

    async def handle_async_request(self, request):
        await self.on_request(request)
        response = await super().handle_async_request(request)
        await self.on_response(request, response)
        return response

    async def on_request(self, request):
        self.events.append(("request", time.monotonic(), request.method, str(request.url), None))

    async def on_response(self, request, response):
        self.events.append(
            (
                "response",
                time.monotonic(),
                request.method,
                str(request.url),
                (response.status_code, response.headers.get("Retry-After")),
            )
        )


def credential(base, tenant):
    return ClientSecretCredential(
        tenant,
        CLIENT_ID,
        CLIENT_SECRET,
        authority=base,
        # The simulator is no authority Microsoft knows: MSAL would ask
        # login.microsoftonline.com to validate it otherwise.
        disable_instance_discovery=True,
    )


def graph_client(base, tenant, recorder=None):
    """The Graph SDK's client pointed at a simulator: its base URL, and the simulator's host
    allowed to receive tokens (the SDK sends them only to Graph's hosts by default)."""
    host = httpx.URL(base).host
    auth = AzureIdentityAuthenticationProvider(
        credential(base, tenant), scopes=[GRAPH_SCOPE], allowed_hosts=[host]
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(base_url=f"{base}/v1.0", transport=recorder, timeout=30)
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{base}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


@pytest.fixture
def graph(base_url, tenant_id):
    """A client per test: each test runs its own event loop, and an httpx client is bound to
    the loop it first ran in."""
    return graph_client(base_url, tenant_id)
