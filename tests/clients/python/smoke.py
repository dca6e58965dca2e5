"""A client generated with openapi-python-client from the served /openapi.json, used the way an
integration would: sign in, mint an API key, upload a report, wait for its scan, list scans,
read findings, triage one and read it back. Every step asserts on what it got; any failure
exits non-zero.

Run by .ci/clients-check, which generates the package `rampart_client` (never committed) and
puts it on PYTHONPATH. Needs RAMPART_URL, RAMPART_ADMIN_EMAIL and RAMPART_ADMIN_PASSWORD.
"""

import io
import json
import os
import sys
import time
import uuid

from rampart_client import AuthenticatedClient, Client
from rampart_client.api.api_keys import create_api_key
from rampart_client.api.auth import login, me
from rampart_client.api.findings import get_finding, list_findings, set_finding_state
from rampart_client.api.scans import get_scan, ingest, list_scans, scan_findings
from rampart_client.models import (
    CreateApiKeyBody,
    CreateApiKeyBodyScopesItem,
    GetScanResponse,
    ListFindingsSeverityItem,
    ListFindingsTriageState,
    LoginBody,
    ScanAcceptedResponse,
    SetFindingStateBody,
    SetFindingStateBodyState,
)
from rampart_client.types import File

BASE = os.environ["RAMPART_URL"]
EMAIL = os.environ["RAMPART_ADMIN_EMAIL"]
PASSWORD = os.environ["RAMPART_ADMIN_PASSWORD"]


def step(name):
    print(f"python client: {name}", flush=True)


def expect(response, status, model):
    """The parsed body of `response`, after checking its status and type."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.content!r}"
    )
    assert isinstance(response.parsed, model), f"expected {model.__name__}, got {response.parsed!r}"
    return response.parsed


def sarif_report(target):
    """Three results, one per SARIF level: error → high, warning → medium, note → low."""
    results = [
        ("smoke.sql-injection", "error", "app/db.py", 12),
        ("smoke.weak-hash", "warning", "app/auth.py", 40),
        ("smoke.debug-flag", "note", "app/settings.py", 3),
    ]
    return json.dumps(
        {
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "smoke-scanner",
                            "version": "1.0.0",
                            "rules": [
                                {"id": rule, "shortDescription": {"text": f"{rule} in {target}"}}
                                for rule, _, _, _ in results
                            ],
                        }
                    },
                    "results": [
                        {
                            "ruleId": rule,
                            "level": level,
                            "message": {"text": f"{rule} found"},
                            "locations": [
                                {
                                    "physicalLocation": {
                                        "artifactLocation": {"uri": path},
                                        "region": {"startLine": line},
                                    }
                                }
                            ],
                        }
                        for rule, level, path, line in results
                    ],
                }
            ],
        }
    ).encode()


def main():
    anonymous = Client(base_url=BASE)

    step("sign in")
    session = expect(
        login.sync_detailed(client=anonymous, body=LoginBody(email=EMAIL, password=PASSWORD)),
        200,
        login.LoginResponse,
    ).data
    # Without MFA the password step answers the session itself.
    assert session.mfa_required is False, session.mfa_required
    assert session.user.email == EMAIL, session.user.email
    assert session.expires_in > 0
    signed_in = AuthenticatedClient(base_url=BASE, token=session.token)

    step("create an API key")
    created = expect(
        create_api_key.sync_detailed(
            client=signed_in,
            body=CreateApiKeyBody(label="python-client-smoke", scopes=[CreateApiKeyBodyScopesItem.WRITE]),
        ),
        201,
        create_api_key.CreateApiKeyResponse,
    ).data
    assert created.key.startswith("rmp_"), created.key
    assert created.api_key.label == "python-client-smoke"
    assert created.api_key.scopes == CreateApiKeyBodyScopesItem.WRITE.value
    scanner = AuthenticatedClient(base_url=BASE, token=created.key, auth_header_name="x-api-key", prefix="")
    who = expect(me.sync_detailed(client=scanner), 200, me.MeResponse).data
    assert who.kind == "api_key", who.kind

    step("upload a report")
    target = f"python-smoke-{uuid.uuid4().hex[:12]}"
    report = sarif_report(target)
    accepted = expect(
        ingest.sync_detailed(
            client=scanner,
            body=File(payload=io.BytesIO(report), file_name="report.sarif", mime_type="application/octet-stream"),
            target=target,
            target_kind="repository",
        ),
        202,
        ScanAcceptedResponse,
    )
    scan_id = accepted.data.id
    assert accepted.data.target.name == target, accepted.data.target.name
    assert accepted.data.raw_size == len(report), accepted.data.raw_size
    assert accepted.links.events == f"/api/v1/scans/{scan_id}/events", accepted.links.events

    step("wait for the scan to complete")
    deadline = time.monotonic() + 60
    while True:
        scan = expect(get_scan.sync_detailed(client=scanner, id=scan_id), 200, GetScanResponse).data
        if scan.status in ("complete", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert scan.status == "complete", f"scan ended {scan.status}: {scan.error}"
    assert scan.counts.total == 3 and scan.findings_new == 3, scan.to_dict()
    assert (scan.counts.high, scan.counts.medium, scan.counts.low) == (1, 1, 1), scan.counts.to_dict()

    step("list scans")
    scans = expect(
        list_scans.sync_detailed(client=scanner, target_id=scan.target_id), 200, list_scans.ListScansResponse
    )
    assert scans.meta.total == 1, scans.meta.to_dict()
    assert [s.id for s in scans.data] == [scan_id]

    step("read findings")
    seen = expect(
        scan_findings.sync_detailed(client=scanner, id=scan_id), 200, scan_findings.ScanFindingsResponse
    )
    assert seen.meta.total == 3, seen.meta.to_dict()
    assert sorted(f.rule_id for f in seen.data) == ["smoke.debug-flag", "smoke.sql-injection", "smoke.weak-hash"]
    worst = expect(
        list_findings.sync_detailed(
            client=scanner,
            target_id=scan.target_id,
            severity=[ListFindingsSeverityItem.HIGH, ListFindingsSeverityItem.MEDIUM],
        ),
        200,
        list_findings.ListFindingsResponse,
    )
    assert sorted(f.severity for f in worst.data) == ["high", "medium"], [f.severity for f in worst.data]
    finding = next(f for f in worst.data if f.severity == "high")
    assert finding.rule_id == "smoke.sql-injection" and finding.location.path == "app/db.py"
    assert finding.triage.state == "untriaged", finding.triage.state

    step("triage a finding")
    note = "parameterised in the ORM layer; not reachable"
    triaged = expect(
        set_finding_state.sync_detailed(
            client=scanner,
            id=finding.id,
            body=SetFindingStateBody(state=SetFindingStateBodyState.FALSE_POSITIVE, note=note),
        ),
        200,
        set_finding_state.SetFindingStateResponse,
    ).data
    assert triaged.triage.state == "false_positive", triaged.triage.state

    step("read the triage back")
    again = expect(get_finding.sync_detailed(client=scanner, id=finding.id), 200, get_finding.GetFindingResponse).data
    assert again.triage.state == "false_positive" and again.triage.note == note, again.triage.to_dict()
    dismissed = expect(
        list_findings.sync_detailed(
            client=scanner, target_id=scan.target_id, triage_state=ListFindingsTriageState.FALSE_POSITIVE
        ),
        200,
        list_findings.ListFindingsResponse,
    )
    assert [f.id for f in dismissed.data] == [finding.id], [f.id for f in dismissed.data]

    step("an error answer is the contract's envelope")
    missing = get_finding.sync_detailed(client=scanner, id=uuid.uuid4())
    assert missing.status_code == 404, missing.status_code
    assert missing.parsed.code == "NOT_FOUND" and missing.parsed.status_code == 404, missing.parsed

    print("python client: all steps passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as err:
        print(f"python client smoke FAILED: {err}", file=sys.stderr)
        raise
