#!/usr/bin/env python3
"""Extract the parts of Microsoft Graph's v1.0 OpenAPI descriptions that enroll uses.

The full per-module YAML files (msgraph-sdk-powershell, openApiDocs/v1.0) are megabytes each;
tests only need the paths enroll calls and the schemas of the objects it reads and writes.
This writes one compact JSON file per module into tests/data/graph-openapi/:

    {"source": ..., "paths": {"/users": ["get"], ...},
     "schemas": {"microsoft.graph.user": {"properties": {"mail": {"type": "string", "nullable": true}, ...}}}}

Inheritance (allOf) is flattened. A property that refers to another schema keeps the name in
"ref"; referenced enums are included (as {"enum": [...]}) and so are the complex types listed
below; other referenced types are not, and a checker must refuse to look inside them.

Usage: python3 scripts/extract_graph_openapi.py /path/to/graph-openapi tests/data/graph-openapi
Needs PyYAML.
"""
import json
import os
import sys

import yaml

WANTED = {
    "Users.yml": {
        "paths": ["/users", "/users/{user-id}"],
        "schemas": ["microsoft.graph.user", "microsoft.graph.objectIdentity"],
    },
    "Identity.SignIns.yml": {
        "paths": ["/invitations"],
        "schemas": [
            "microsoft.graph.invitation",
            "microsoft.graph.invitedUserMessageInfo",
            "microsoft.graph.recipient",
            "microsoft.graph.emailAddress",
        ],
    },
    "Identity.Governance.yml": {
        "paths": [
            "/identityGovernance/entitlementManagement/catalogs",
            "/identityGovernance/entitlementManagement/catalogs/{accessPackageCatalog-id}",
            "/identityGovernance/entitlementManagement/catalogs/{accessPackageCatalog-id}/accessPackages",
            "/identityGovernance/entitlementManagement/accessPackages/{accessPackage-id}/assignmentPolicies",
            "/identityGovernance/entitlementManagement/accessPackages",
            "/identityGovernance/entitlementManagement/accessPackages/{accessPackage-id}",
            "/identityGovernance/entitlementManagement/assignmentPolicies",
            "/identityGovernance/entitlementManagement/assignmentPolicies/{accessPackageAssignmentPolicy-id}",
            "/identityGovernance/entitlementManagement/assignments",
            "/identityGovernance/entitlementManagement/assignments/{accessPackageAssignment-id}",
            "/identityGovernance/entitlementManagement/assignmentRequests",
            "/identityGovernance/entitlementManagement/assignmentRequests/{accessPackageAssignmentRequest-id}",
            "/identityGovernance/entitlementManagement/assignmentRequests/{accessPackageAssignmentRequest-id}/microsoft.graph.reprocess",
            "/identityGovernance/entitlementManagement/assignments/{accessPackageAssignment-id}/microsoft.graph.reprocess",
        ],
        "schemas": [
            "microsoft.graph.accessPackageCatalog",
            "microsoft.graph.accessPackage",
            "microsoft.graph.accessPackageAssignmentPolicy",
            "microsoft.graph.accessPackageAssignment",
            "microsoft.graph.accessPackageAssignmentRequest",
            "microsoft.graph.accessPackageSubject",
            "microsoft.graph.entitlementManagementSchedule",
            "microsoft.graph.expirationPattern",
        ],
    },
    "Applications.yml": {
        "paths": [
            "/applications",
            "/applications/{application-id}",
            "/servicePrincipals",
            "/servicePrincipals/{servicePrincipal-id}",
            "/servicePrincipals/{servicePrincipal-id}/appRoleAssignedTo",
            "/servicePrincipals/{servicePrincipal-id}/appRoleAssignedTo/{appRoleAssignment-id}",
            # Applications.yml, not Groups.yml, holds the group app-role-assignment paths.
            "/groups/{group-id}/appRoleAssignments",
            "/groups/{group-id}/appRoleAssignments/{appRoleAssignment-id}",
        ],
        "schemas": [
            "microsoft.graph.application",
            "microsoft.graph.servicePrincipal",
            "microsoft.graph.appRole",
            "microsoft.graph.appRoleAssignment",
            "microsoft.graph.informationalUrl",
            "microsoft.graph.verifiedPublisher",
        ],
    },
    "Groups.yml": {
        "paths": [
            "/groups",
            "/groups/{group-id}",
        ],
        "schemas": ["microsoft.graph.group"],
    },
}

METHODS = ["get", "post", "patch", "put", "delete"]


def ref_name(ref):
    return ref.rsplit("/", 1)[-1]


def normalize(prop, enums, schemas):
    """One property schema, reduced to type, nullability, items and ref."""
    out = {}
    if "$ref" in prop:
        out["ref"] = ref_name(prop["$ref"])
    elif "anyOf" in prop or "oneOf" in prop:
        for alt in prop.get("anyOf", []) + prop.get("oneOf", []):
            if "$ref" in alt:
                out["ref"] = ref_name(alt["$ref"])
            elif alt.get("nullable"):
                out["nullable"] = True
            elif "type" in alt and "ref" not in out:
                out.update(normalize(alt, enums, schemas))
    else:
        if "type" in prop:
            out["type"] = prop["type"]
        if prop.get("nullable"):
            out["nullable"] = True
        if "items" in prop:
            out["items"] = normalize(prop["items"], enums, schemas)
    if prop.get("nullable"):
        out["nullable"] = True
    if "ref" in out and out["ref"] in schemas and "enum" in schemas[out["ref"]]:
        enums.add(out["ref"])
    if "items" in out and "ref" in out["items"]:
        name = out["items"]["ref"]
        if name in schemas and "enum" in schemas[name]:
            enums.add(name)
    return out


def flatten(name, schemas, enums):
    schema = schemas[name]
    props = {}
    parts = schema.get("allOf", [schema])
    for part in parts:
        if "$ref" in part:
            props.update(flatten(ref_name(part["$ref"]), schemas, enums)["properties"])
        for key, prop in part.get("properties", {}).items():
            props[key] = normalize(prop, enums, schemas)
    return {"properties": dict(sorted(props.items()))}


def main(src, dst):
    os.makedirs(dst, exist_ok=True)
    for file, wanted in WANTED.items():
        with open(os.path.join(src, file)) as f:
            doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        schemas = doc["components"]["schemas"]
        enums = set()
        out_schemas = {}
        for name in wanted["schemas"]:
            out_schemas[name] = flatten(name, schemas, enums)
        for name in sorted(enums):
            out_schemas[name] = {"enum": schemas[name]["enum"]}
        out_paths = {}
        for path in wanted["paths"]:
            item = doc["paths"][path]
            out_paths[path] = [m for m in METHODS if m in item]
        out = {
            "source": "microsoftgraph/msgraph-sdk-powershell openApiDocs/v1.0/" + file
            + " (extracted by scripts/extract_graph_openapi.py; MIT, see LICENSE.txt)",
            "paths": out_paths,
            "schemas": dict(sorted(out_schemas.items())),
        }
        target = os.path.join(dst, file.replace(".yml", ".json"))
        with open(target, "w") as f:
            json.dump(out, f, indent=1, sort_keys=False)
            f.write("\n")
        print(target, len(out_paths), "paths", len(out_schemas), "schemas")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
