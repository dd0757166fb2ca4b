"""Microsoft's own Python clients (MSAL, azure-identity, msgraph-sdk) against
`enroll sim --tls`, as a team would point them at Entra ID and Graph: tokens, paging,
advanced queries, invitations, entitlement management, `$batch`, app roles, throttling."""
import asyncio
import time
import uuid

import msal
import pytest
import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_request import (
    AccessPackageAssignmentRequest,
)
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.app_role import AppRole
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.generated.identity_governance.entitlement_management.access_packages.access_packages_request_builder import (
    AccessPackagesRequestBuilder,
)
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.page_iterator import PageIterator

from conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    GRAPH_SCOPE,
    CountingSession,
    Recorder,
    claims,
    graph_client,
)


def run(coroutine):
    return asyncio.run(coroutine)


def eventual():
    headers = HeadersCollection()
    headers.add("ConsistencyLevel", "eventual")
    return headers


# ----- tokens --------------------------------------------------------------------------------


def test_msal_confidential_client_gets_a_token_then_serves_the_next_from_its_cache(
    base_url, tenant_id
):
    session = CountingSession()
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=f"{base_url}/{tenant_id}",
        instance_discovery=False,
        http_client=session,
    )
    first = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in first, first
    assert first["token_source"] == "identity_provider"
    token = claims(first["access_token"])
    assert token["aud"] == "https://graph.microsoft.com"
    assert token["iss"] == f"{base_url}/{tenant_id}/v2.0"
    assert token["tid"] == tenant_id
    assert token["azp"] == CLIENT_ID
    token_posts = [s for s in session.sent if s == ("POST", f"{base_url}/{tenant_id}/oauth2/v2.0/token")]
    assert len(token_posts) == 1, session.sent

    second = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    token_posts = [s for s in session.sent if s[0] == "POST"]
    assert len(token_posts) == 1, f"a second token request was made: {session.sent}"


def test_msal_finds_the_tenant_by_a_domain_of_its_users(base_url, tenant_id):
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=f"{base_url}/contoso.onmicrosoft.com",
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert claims(result["access_token"])["tid"] == tenant_id


def test_msal_gets_entras_error_for_an_unknown_resource(base_url, tenant_id):
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=f"{base_url}/{tenant_id}",
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=["api://payroll/.default"])
    assert result["error"] == "invalid_resource"
    assert result["error_codes"] == [500011]


def test_azure_identity_client_secret_credential_caches_its_token(base_url, tenant_id):
    session = CountingSession()
    credential = ClientSecretCredential(
        tenant_id,
        CLIENT_ID,
        CLIENT_SECRET,
        authority=base_url,
        disable_instance_discovery=True,
        transport=RequestsTransport(session=session, session_owner=False),
    )
    first = credential.get_token(GRAPH_SCOPE)
    assert first.expires_on > time.time() + 3000
    assert claims(first.token)["aud"] == "https://graph.microsoft.com"
    second = credential.get_token(GRAPH_SCOPE)
    assert second.token == first.token
    assert [s[0] for s in session.sent].count("POST") == 1, session.sent


def test_client_secret_basic_is_accepted(base_url, tenant_id):
    answer = requests.post(
        f"{base_url}/{tenant_id}/oauth2/v2.0/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert claims(answer.json()["access_token"])["appid"] == CLIENT_ID


# ----- users ---------------------------------------------------------------------------------


def test_users_with_filter_select_and_top_through_the_page_iterator(graph, tenant):
    guests_with_a = sorted(
        u["id"]
        for u in tenant["users"]
        if u["userType"] == "Guest" and u["userPrincipalName"].lower().startswith("a")
    )

    async def all_pages():
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter="startswith(userPrincipalName,'a')",
            select=["id", "displayName", "userType"],
            top=5,
        )
        first = await graph.users.get(RequestConfiguration(query_parameters=query))
        seen = []
        # The page's own type parses the next pages (passing constructor_callable is refused).
        pages = PageIterator(first, graph.request_adapter)

        def keep(user):
            seen.append(user)
            return True

        await pages.iterate(keep)
        return first, seen

    first, seen = run(all_pages())
    assert len(first.value) == 5
    assert first.odata_next_link is not None
    starting_with_a = [u for u in tenant["users"] if u["userPrincipalName"].lower().startswith("a")]
    assert len(seen) == len(starting_with_a)
    # $select: only what was asked for.
    assert all(u.mail is None and u.user_type in ("Guest", "Member") for u in seen)
    assert sorted(u.id for u in seen if u.user_type == "Guest") == guests_with_a


def test_count_and_search_need_the_eventual_consistency_header(graph, tenant):
    # A word that starts some display names: the first three letters of the first user's.
    term = tenant["users"][0]["displayName"].split()[0][:3].lower()

    async def calls():
        count = await graph.users.count.get(
            RequestConfiguration(headers=eventual())
        )
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            count=True,
            search=f'"displayName:{term}"',
            select=["displayName"],
        )
        found = await graph.users.get(
            RequestConfiguration(query_parameters=query, headers=eventual())
        )
        guests = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            count=True, filter="userType eq 'Guest' and endsWith(mail,'.be')", top=999
        )
        be = await graph.users.get(RequestConfiguration(query_parameters=guests, headers=eventual()))
        return count, found, be

    count, found, be = run(calls())
    assert count == len(tenant["users"])
    words = lambda name: [w.lower() for w in name.replace("-", " ").split()]
    expected = [u for u in tenant["users"] if any(w.startswith(term) for w in words(u["displayName"]))]
    assert expected, f"the example tenant has someone whose name starts with {term}"
    assert found.odata_count == len(expected)
    assert sorted(u.display_name for u in found.value) == sorted(u["displayName"] for u in expected)
    expected_be = [u for u in tenant["users"] if u["userType"] == "Guest" and (u.get("mail") or "").lower().endswith(".be")]
    assert be.odata_count == len(expected_be) == len(be.value)


def test_advanced_queries_without_their_parameters_get_graphs_400(graph):
    from kiota_abstractions.api_error import APIError

    async def refused():
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter="endsWith(mail,'.be')"
        )
        await graph.users.get(RequestConfiguration(query_parameters=query))

    with pytest.raises(APIError) as error:
        run(refused())
    assert error.value.response_status_code == 400
    assert error.value.error.code == "Request_UnsupportedQuery"


# ----- invitations and entitlement management -----------------------------------------------


def test_an_invitation_makes_a_guest(graph):
    address = f"guest-{uuid.uuid4().hex[:8]}@fabrikam.example"

    async def invite():
        sent = await graph.invitations.post(
            Invitation(
                invited_user_email_address=address,
                invite_redirect_url="https://myapps.microsoft.com",
                invited_user_display_name="Fabrikam Guest",
                send_invitation_message=False,
            )
        )
        user = await graph.users.by_user_id(sent.invited_user.id).get()
        return sent, user

    sent, user = run(invite())
    assert sent.status == "PendingAcceptance"
    assert sent.invited_user_email_address == address
    assert user.mail == address
    assert user.user_principal_name.startswith(address.replace("@", "_") + "#EXT#@")


def test_access_packages_with_their_policies_expanded(graph, tenant):
    async def packages():
        query = AccessPackagesRequestBuilder.AccessPackagesRequestBuilderGetQueryParameters(
            expand=["assignmentPolicies"], top=100
        )
        return await graph.identity_governance.entitlement_management.access_packages.get(
            RequestConfiguration(query_parameters=query)
        )

    answer = run(packages())
    assert len(answer.value) == len(tenant["accessPackages"])
    by_id = {p["id"]: p for p in tenant["accessPackages"]}
    for package in answer.value:
        expected = [p["id"] for p in by_id[package.id]["assignmentPolicies"]]
        assert [p.id for p in package.assignment_policies] == expected


def test_admin_add_then_admin_remove(graph, tenant):
    package = tenant["accessPackages"][5]
    policy = package["assignmentPolicies"][0]["id"]
    holders = {a["target"]["objectId"] for a in tenant["assignments"] if a["accessPackage"]["id"] == package["id"]}
    user = next(u for u in tenant["users"] if u["id"] not in holders and u["userType"] == "Member")
    em = graph.identity_governance.entitlement_management

    async def add_then_remove():
        added = await em.assignment_requests.post(
            AccessPackageAssignmentRequest(
                request_type=AccessPackageRequestType.AdminAdd,
                assignment=AccessPackageAssignment(
                    additional_data={
                        "targetId": user["id"],
                        "assignmentPolicyId": policy,
                        "accessPackageId": package["id"],
                    }
                ),
            )
        )
        request = await em.assignment_requests.by_access_package_assignment_request_id(added.id).get(
            RequestConfiguration(
                query_parameters=em.assignment_requests.by_access_package_assignment_request_id(
                    added.id
                ).AccessPackageAssignmentRequestItemRequestBuilderGetQueryParameters(expand=["assignment"])
            )
        )
        removed = await em.assignment_requests.post(
            AccessPackageAssignmentRequest(
                request_type=AccessPackageRequestType.AdminRemove,
                assignment=AccessPackageAssignment(id=request.assignment.id),
            )
        )
        return added, request, removed

    added, request, removed = run(add_then_remove())
    assert added.request_type == AccessPackageRequestType.AdminAdd
    assert added.state.value in ("submitted", "delivered")
    assert request.assignment.id
    assert removed.request_type == AccessPackageRequestType.AdminRemove


def test_batch_request_content_reads_and_writes_in_one_round_trip(graph, tenant):
    users = tenant["users"][:3]

    async def batch():
        content = BatchRequestContent()
        items = []
        for user in users:
            info = RequestInformation()
            info.http_method = Method.GET
            info.url = f"{graph.request_adapter.base_url}/users/{user['id']}"
            item = BatchRequestItem(request_information=info)
            content.add_request(None, item)
            items.append(item)
        # An item that depends on another: the SDK writes `depends_on`, which Graph ignores.
        missing = RequestInformation()
        missing.http_method = Method.GET
        missing.url = f"{graph.request_adapter.base_url}/users/{uuid.uuid4()}"
        last = BatchRequestItem(request_information=missing)
        last.set_depends_on([items[0]])
        content.add_request(None, last)
        answer = await graph.batch.post(batch_request_content=content)
        return items, last, answer

    items, last, answer = run(batch())
    for item, user in zip(items, users):
        response = answer.get_response_by_id(item.id)
        assert response.status == 200
        assert response.body["id"] if isinstance(response.body, dict) else True
    assert answer.get_response_by_id(last.id).status == 404


# ----- applications and app roles ------------------------------------------------------------


def test_application_app_roles_are_read_and_replaced_whole(graph, tenant):
    app = tenant["applications"][0]
    role_id = str(uuid.uuid4())

    async def update():
        before = await graph.applications.by_application_id(app["id"]).get()
        roles = list(before.app_roles) + [
            AppRole(
                id=role_id,
                value=f"Client.Test.{role_id[:8]}",
                display_name="Client test",
                description="Added by the client suite",
                allowed_member_types=["User"],
                is_enabled=True,
            )
        ]
        await graph.applications.by_application_id(app["id"]).patch(Application(app_roles=roles))
        after = await graph.applications.by_application_id(app["id"]).get()
        return before, after

    before, after = run(update())
    assert len(before.app_roles) == len(app["appRoles"])
    assert len(after.app_roles) == len(before.app_roles) + 1
    assert str(after.app_roles[-1].id) == role_id


def test_group_app_role_assignments_are_made_listed_and_removed(graph, tenant):
    sp = tenant["servicePrincipals"][0]
    held = {a["principalId"] for a in tenant["appRoleAssignments"]}
    group = next(g for g in tenant["groups"] if g["id"] not in held)
    role = tenant["applications"][0]["appRoles"][0]["id"]
    assignments = graph.groups.by_group_id(group["id"]).app_role_assignments

    async def assign():
        made = await assignments.post(
            AppRoleAssignment(principal_id=group["id"], resource_id=sp["id"], app_role_id=role)
        )
        listed = await assignments.get()
        await assignments.by_app_role_assignment_id(made.id).delete()
        after = await assignments.get()
        return made, listed, after

    made, listed, after = run(assign())
    assert str(made.principal_id) == group["id"]
    assert made.principal_type == "Group"
    assert [a.id for a in listed.value] == [made.id]
    assert after.value == []


# ----- throttling ----------------------------------------------------------------------------


def test_the_sdk_waits_the_whole_seconds_retry_after_asks(throttled_url, tenant_id, tenant):
    recorder = Recorder()
    client = graph_client(throttled_url, tenant_id, recorder)
    ids = [u["id"] for u in tenant["users"][:4]]
    assert len(ids) == 4

    async def burst():
        return await asyncio.gather(*(client.users.by_user_id(i).get() for i in ids))

    users = run(burst())
    assert [u.id for u in users] == ids
    throttled = [e for e in recorder.events if e[0] == "response" and e[4][0] == 429]
    assert throttled, "the simulator started with --throttle-rps 1 throttled nothing"
    for _, at, method, url, (_, retry_after) in throttled:
        assert retry_after is not None and retry_after.isdigit(), retry_after
        again = [e for e in recorder.events if e[0] == "request" and e[3] == url and e[1] > at]
        assert again, f"{url} was not tried again"
        waited = again[0][1] - at
        assert waited >= int(retry_after), f"{url}: waited {waited:.2f}s, asked {retry_after}s"
