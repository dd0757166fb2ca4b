#!/usr/bin/env python3
"""Writes the example tenant (examples/tenant.json) and rosters (examples/rosters/).

Modelled on the real case: 20 projects x Approver/Contributor/Manager, plus Key Users and
Read Only, a few hundred people from several companies. Deterministic (fixed seed), so the
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

tenant = {"catalogs": [catalog], "users": users, "accessPackages": packages,
          "assignments": assignments, "assignmentRequests": []}
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
      f"{len(people)} people in rosters")
