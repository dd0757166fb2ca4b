"""Prints an OpenAPI 3.0 description of the Graph operations `enroll sim` serves, for
schemathesis (scripts/pyclients test).

The paths, methods and schemas come from Microsoft's Graph description as extracted in
tests/data/graph-openapi (nothing is invented here): each operation below must be in the
extract, and its request and answer bodies are the extract's types. What the extract does not
say (answer codes, the error envelope, collections) is Graph's documented shape.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXTRACT = ROOT / "tests" / "data" / "graph-openapi"

EM = "/identityGovernance/entitlementManagement"
# (path, method, entity type): the operations the simulator serves, as Graph names them.
SERVED = [
    ("/users", "get", "microsoft.graph.user"),
    ("/users/{user-id}", "get", "microsoft.graph.user"),
    ("/invitations", "post", "microsoft.graph.invitation"),
    ("/applications", "get", "microsoft.graph.application"),
    ("/applications/{application-id}", "get", "microsoft.graph.application"),
    ("/applications/{application-id}", "patch", "microsoft.graph.application"),
    ("/servicePrincipals", "get", "microsoft.graph.servicePrincipal"),
    ("/servicePrincipals/{servicePrincipal-id}", "get", "microsoft.graph.servicePrincipal"),
    (
        "/servicePrincipals/{servicePrincipal-id}/appRoleAssignedTo",
        "get",
        "microsoft.graph.appRoleAssignment",
    ),
    (
        "/servicePrincipals/{servicePrincipal-id}/appRoleAssignedTo",
        "post",
        "microsoft.graph.appRoleAssignment",
    ),
    (
        "/servicePrincipals/{servicePrincipal-id}/appRoleAssignedTo/{appRoleAssignment-id}",
        "delete",
        "microsoft.graph.appRoleAssignment",
    ),
    ("/groups", "get", "microsoft.graph.group"),
    ("/groups/{group-id}", "get", "microsoft.graph.group"),
    ("/groups/{group-id}/appRoleAssignments", "get", "microsoft.graph.appRoleAssignment"),
    ("/groups/{group-id}/appRoleAssignments", "post", "microsoft.graph.appRoleAssignment"),
    (
        "/groups/{group-id}/appRoleAssignments/{appRoleAssignment-id}",
        "delete",
        "microsoft.graph.appRoleAssignment",
    ),
    (f"{EM}/catalogs", "get", "microsoft.graph.accessPackageCatalog"),
    (f"{EM}/catalogs/{{accessPackageCatalog-id}}", "get", "microsoft.graph.accessPackageCatalog"),
    (
        f"{EM}/catalogs/{{accessPackageCatalog-id}}/accessPackages",
        "get",
        "microsoft.graph.accessPackage",
    ),
    (f"{EM}/accessPackages", "get", "microsoft.graph.accessPackage"),
    (f"{EM}/accessPackages/{{accessPackage-id}}", "get", "microsoft.graph.accessPackage"),
    (
        f"{EM}/accessPackages/{{accessPackage-id}}/assignmentPolicies",
        "get",
        "microsoft.graph.accessPackageAssignmentPolicy",
    ),
    (f"{EM}/assignmentPolicies", "get", "microsoft.graph.accessPackageAssignmentPolicy"),
    (f"{EM}/assignments", "get", "microsoft.graph.accessPackageAssignment"),
    (
        f"{EM}/assignments/{{accessPackageAssignment-id}}",
        "get",
        "microsoft.graph.accessPackageAssignment",
    ),
    (f"{EM}/assignmentRequests", "get", "microsoft.graph.accessPackageAssignmentRequest"),
    (f"{EM}/assignmentRequests", "post", "microsoft.graph.accessPackageAssignmentRequest"),
    (
        f"{EM}/assignmentRequests/{{accessPackageAssignmentRequest-id}}",
        "get",
        "microsoft.graph.accessPackageAssignmentRequest",
    ),
]

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def convert(spec):
    """One property of the extract as an OpenAPI 3.0 schema."""
    if "ref" in spec:
        out = {"allOf": [ref(spec["ref"])]}
    elif spec.get("type") == "array":
        out = {"type": "array", "items": convert(spec.get("items", {}))}
    elif "type" in spec:
        out = {"type": spec["type"]}
    else:
        out = {}
    if spec.get("nullable"):
        out["nullable"] = True
    return out


def main():
    paths_in_extract = {}
    schemas = {}
    for path in sorted(EXTRACT.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for p, methods in doc["paths"].items():
            paths_in_extract.setdefault(p, set()).update(methods)
        schemas.update(doc["schemas"])
    components = {"ODataError": ERROR}
    for name, spec in schemas.items():
        if "enum" in spec:
            components[name] = {"type": "string", "enum": spec["enum"]}
        else:
            props = {k: convert(v) for k, v in spec.get("properties", {}).items()}
            components[name] = {"type": "object", "properties": props}
    errors = {
        code: {
            "description": "Graph's error",
            "content": {"application/json": {"schema": ref("ODataError")}},
        }
        for code in ("400", "404", "405", "409")
    }
    paths = {}
    for path, method, entity in SERVED:
        if method not in paths_in_extract.get(path, ()):
            sys.exit(f"sim_openapi.py: {method.upper()} {path} is not in the Graph extract")
        if entity not in components:
            sys.exit(f"sim_openapi.py: {entity} is not in the Graph extract")
        params = [
            {"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for seg in path.split("/")
            if seg.startswith("{")
        ]
        collection = method == "get" and not path.endswith("}")
        if collection:
            params.append(
                {
                    "name": "$top",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 999},
                }
            )
        op = {"operationId": f"{method}{path}", "parameters": params, "responses": dict(errors)}
        if method in ("post", "patch"):
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(entity)}},
            }
        if collection:
            body = {
                "type": "object",
                "required": ["value"],
                "properties": {"value": {"type": "array", "items": ref(entity)}},
            }
            op["responses"]["200"] = {
                "description": "a page",
                "content": {"application/json": {"schema": body}},
            }
        elif method == "get":
            op["responses"]["200"] = {
                "description": "the entity",
                "content": {"application/json": {"schema": ref(entity)}},
            }
        elif method == "post":
            op["responses"]["201"] = {
                "description": "created",
                "content": {"application/json": {"schema": ref(entity)}},
            }
        else:
            op["responses"]["204"] = {"description": "done"}
        paths.setdefault(path, {})[method] = op
    json.dump(
        {
            "openapi": "3.0.3",
            "info": {"title": "enroll sim: the Graph v1.0 operations it serves", "version": "1"},
            "paths": paths,
            "components": {"schemas": components},
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()
