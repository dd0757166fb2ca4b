#!/usr/bin/env python3
"""Writes the example tenant (examples/tenant.json), rosters (examples/rosters/) and app role
manifest with its mapping (examples/app-roles.json, examples/app-roles.mapping.json).

Modelled on the real case: 20 projects x Approver/Contributor/Manager, plus Key Users and
Read Only, a few hundred people from several companies, and the business application with
one app role per package, each held by one group. Deterministic (fixed seed), so the
committed files only change when this script does. Run: python3 examples/generate.py
"""
import json
import random
import uuid
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(20261127)
NS = uuid.UUID("6f1c1a52-8f0e-4e36-9a61-0c7d2b7f0e11")


def gid(*parts):
    return str(uuid.uuid5(NS, "/".join(parts)))


TENANT_DOMAIN = "contoso.onmicrosoft.com"
PROJECTS = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India",
            "Juliett", "Kilo", "Lima", "Mike", "November", "Oscar", "Papa", "Quebec", "Romeo",
            "Sierra", "Tango"]
ROLES = ["Approver", "Contributor", "Manager"]
COMPANIES = [("contoso.com", "Member"), ("fabrikam.com", "Guest"), ("northwind.nl", "Guest"),
             ("adatum.de", "Guest"), ("tailspin.be", "Guest"), ("woodgrove.pl", "Guest")]
FIRST = ["Eén", "Ĳsbrand", "Zoë", "Łukasz", "Anna", "Bram", "Chloé", "Daan", "Emma", "Finn",
         "Greta", "Hugo", "Iris", "Jesse", "Kees", "Lotte", "Maarten", "Noor", "Olaf", "Pieter",
         "Renée", "Sanne", "Thijs", "Ursula", "Vera", "Willem", "Xander", "Yara", "Zofia", "Jürgen",
         "Søren", "Agnieszka", "François", "Björn", "Małgorzata", "Sébastien"]
LAST = ["de Vries", "Jansen", "van den Berg", "Bakker", "Müller", "Kowalski", "Nowak", "Peeters",
        "Dubois", "Schmidt", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "Wójcik", "Maes",
        "Janssens", "Fischer", "Weber", "O'Neil", "Hoffmann", "Lambert", "Claes"]
ASCII = str.maketrans({"é": "e", "ë": "e", "ü": "u", "ø": "o", "ç": "c", "ö": "o",
                       "Ł": "L", "ł": "l", "ó": "o", "ą": "a", "ż": "z", "Ĳ": "IJ"})


def address(first, last, domain):
    local = f"{first}.{last}".lower().translate(ASCII).replace(" ", "").replace("'", "")
    return f"{local}@{domain}"


people = []
seen = set()
while len(people) < 420:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    domain, kind = rng.choices(COMPANIES, weights=[5, 2, 2, 1, 1, 1])[0]
    email = address(first, last, domain)
    if email in seen:
        continue
    seen.add(email)
    people.append({"name": f"{first} {last}", "email": email, "kind": kind})

# Most people already exist in the tenant; the rest will be invited.
users = []
user_of = {}
for person in people:
    if person["kind"] == "Guest" and rng.random() < 0.15:
        continue
    uid = gid("user", person["email"])
    if person["kind"] == "Member":
        upn = person["email"]
        user = {"id": uid, "displayName": person["name"], "userPrincipalName": upn,
                "mail": person["email"], "otherMails": [], "userType": "Member"}
    else:
        local, domain = person["email"].split("@")
        upn = f"{local}_{domain}#EXT#@{TENANT_DOMAIN}"
        user = {"id": uid, "displayName": person["name"], "userPrincipalName": upn,
                "mail": person["email"], "otherMails": [person["email"]], "userType": "Guest"}
        # Some guests were invited long ago: no mail, only otherMails in another case.
        if rng.random() < 0.15:
            user["mail"] = None
            user["otherMails"] = [person["email"].upper()]
    users.append(user)
    user_of[person["email"]] = user

catalog = {"id": gid("catalog", "Contoso Projects"), "displayName": "Contoso Projects"}
packages = []
names = [f"Project {p} - {r}" for p in PROJECTS for r in ROLES] + ["Key Users", "Read Only"]
for name in names:
    pid = gid("package", name)
    policies = [{
        "id": gid("policy", name, "admin"),
        "displayName": "Administrator direct assignments",
        "allowedTargetScope": "notSpecified",
    }]
    if rng.random() < 0.3:
        policies.append({
            "id": gid("policy", name, "auto"),
            "displayName": "Auto-assign Contoso staff",
            "allowedTargetScope": "specificDirectoryUsers",
            "automaticRequestSettings": {"requestAccessForAllowedTargets": True,
                                         "removeAccessWhenTargetLeavesAllowedTargets": True},
        })
    if rng.random() < 0.3:
        policies.append({
            "id": gid("policy", name, "self"),
            "displayName": "Members may request",
            "allowedTargetScope": "allMemberUsers",
        })
    packages.append({"id": pid, "displayName": name, "description": f"Access for {name}",
                     "catalog": catalog, "assignmentPolicies": policies})

assignments = []
rosters = {}
def fits_cp1252(person):
    try:
        person["name"].encode("cp1252")
        return True
    except UnicodeEncodeError:
        return False


for index, package in enumerate(packages):
    name = package["displayName"]
    size = {"Approver": (3, 8), "Contributor": (10, 40), "Manager": (2, 5)}
    low, high = next((v for k, v in size.items() if name.endswith(k)), (60, 140))
    # Every sixth roster is saved as Windows-1252, so its people must have names that fit.
    pool = [p for p in people if fits_cp1252(p)] if index % 6 == 1 else people
    members = rng.sample(pool, rng.randint(low, high))
    rosters[name] = members
    admin_policy = package["assignmentPolicies"][0]["id"]
    assigned = [p for p in members if p["email"] in user_of and rng.random() < 0.9]
    # A few people left the roster but still hold the package: they will be removed.
    leavers = [p for p in rng.sample(people, 3) if p not in members and p["email"] in user_of]
    for person in assigned + leavers[: rng.randint(0, 2)]:
        user = user_of[person["email"]]
        assignments.append({
            "id": gid("assignment", name, person["email"]),
            "state": "delivered",
            "status": "Delivered",
            "target": {"id": gid("subject", person["email"]), "objectId": user["id"],
                       "email": person["email"], "displayName": person["name"],
                       "principalName": user["userPrincipalName"]},
            "accessPackage": {"id": package["id"]},
            "assignmentPolicy": {"id": admin_policy},
        })

# The business application: one app role per package, each held by one group (APP-{value}),
# the groups handed out by the packages. The tenant has drifted from the manifest a little.
# A separate generator, so the people, packages and rosters above stay as they were.
app_rng = random.Random(5)
APP_ID = gid("application", "Contoso Projects")
SP_ID = gid("service principal", "Contoso Projects")
values = [f"{p}.{r}" for p in PROJECTS for r in ROLES] + ["KeyUser", "ReadOnly"]


def app_role(value, id=None):
    title = value.replace(".", " ")
    role = {"allowedMemberTypes": ["User"], "description": f"{title} in Contoso Projects",
            "displayName": title, "id": id or gid("role", value), "isEnabled": True,
            "value": value}
    return role


manifest_roles = []
for value in values:
    role = app_role(value)
    if value.startswith("Tango."):
        del role["id"]  # new roles, written without an id: enroll derives one
    manifest_roles.append(role)
group_name = {value: f"APP-{value}" for value in values}
group_name["KeyUser"] = "APP-KeyUsers"  # named by the mapping file, not the convention
groups = [{"id": gid("group", name), "displayName": name, "securityEnabled": True,
           "mailEnabled": False} for name in group_name.values()]
groups.append({"id": gid("group", "Helpdesk"), "displayName": "Helpdesk",
               "securityEnabled": True, "mailEnabled": False})
# Drift: Tango's Approver and Contributor roles are new; Sierra.Manager still has its old
# value; Legacy.Viewer is gone from the manifest.
tenant_roles = []
for value in values:
    if value in ("Tango.Approver", "Tango.Contributor"):
        continue
    role = app_role(value)
    if value == "Sierra.Manager":
        role["value"], role["displayName"] = "Sierra.Lead", "Sierra Lead"
    tenant_roles.append(dict(role, origin="Application"))
tenant_roles.append(dict(app_role("Legacy.Viewer"), origin="Application"))
app_role_assignments = []


def hold(principal_id, principal_type, principal_name, value):
    app_role_assignments.append({
        "id": gid("app role assignment", principal_id, value).replace("-", "")[:43],
        "appRoleId": gid("role", value), "principalId": principal_id,
        "principalType": principal_type, "principalDisplayName": principal_name,
        "resourceId": SP_ID, "resourceDisplayName": "Contoso Projects"})


lacking = set(app_rng.sample([v for v in values if not v.startswith("Tango.")], 3))
for value in values:
    if value.startswith("Tango.") or value in lacking:
        continue
    hold(gid("group", group_name[value]), "Group", group_name[value], value)
# A group holding a role that belongs to another group, one outside the mapping, a user.
hold(gid("group", "APP-Bravo.Approver"), "Group", "APP-Bravo.Approver", "Bravo.Manager")
hold(gid("group", "Helpdesk"), "Group", "Helpdesk", "ReadOnly")
admin = next(u for u in users if u["userType"] == "Member")
hold(admin["id"], "User", admin["displayName"], "KeyUser")

tenant = {"catalogs": [catalog], "users": users, "accessPackages": packages,
          "assignments": assignments, "assignmentRequests": [],
          "applications": [{"id": gid("application object", "Contoso Projects"), "appId": APP_ID,
                            "displayName": "Contoso Projects", "appRoles": tenant_roles}],
          "servicePrincipals": [{"id": SP_ID, "appId": APP_ID,
                                 "displayName": "Contoso Projects", "appRoles": []}],
          "groups": groups, "appRoleAssignments": app_role_assignments}
(HERE / "app-roles.json").write_text(
    json.dumps({"appId": APP_ID, "appRoles": manifest_roles}, indent=2) + "\n", encoding="utf-8")
(HERE / "app-roles.mapping.json").write_text(json.dumps(
    {"groupPattern": "APP-{value}", "roles": {"KeyUser": "APP-KeyUsers"}}, indent=2) + "\n",
    encoding="utf-8")
(HERE / "tenant.json").write_text(json.dumps(tenant, indent=2, ensure_ascii=False) + "\n",
                                  encoding="utf-8")

# Rosters in the encodings and separators Excel really produces.
out = HERE / "rosters"
out.mkdir(exist_ok=True)
for old in out.glob("*.csv"):
    old.unlink()
for index, (name, members) in enumerate(rosters.items()):
    role = name.split(" - ")[-1] if " - " in name else name
    project = name.split(" - ")[0] if " - " in name else "All projects"
    style = index % 6
    rows = [(p["name"], p["email"], f"{project} | {role}") for p in members]
    if style == 1:
        # Excel "CSV (comma delimited)" in Windows-1252, when every name fits in it.
        try:
            text = "DisplayName,Email,Role\r\n" + "".join(
                f'"{n}",{e},{r}\r\n' for n, e, r in rows)
            data = text.encode("cp1252")
        except UnicodeEncodeError:
            style = 2
    if style == 2:
        text = "\ufeffName;E-mail;Package\r\n" + "".join(f"{n};{e};{r}\r\n" for n, e, r in rows)
        data = text.encode("utf-8")
    elif style == 3:
        # Excel "Unicode text": UTF-16 LE with BOM, tab separated.
        text = "\ufeff" + "".join(f"{n}\t{e}\t{r}\r\n" for n, e, r in rows)
        data = text.encode("utf-16-le")
    elif style != 1:
        text = f"# {name}: maintained by the project office\n" + "".join(
            f"{n};{e};{r}\n" for n, e, r in rows)
        data = text.encode("utf-8")
    (out / f"{name}.csv").write_bytes(data)

print(f"{len(users)} users, {len(packages)} packages, {len(assignments)} assignments, "
      f"{len(people)} people in rosters; {len(manifest_roles)} app roles, {len(groups)} groups")
