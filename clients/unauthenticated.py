"""Every operation that declares a security requirement answers 401 without a token (and the
ones that declare none are the public health and metrics endpoints). Usage: BASE_URL SPEC"""

import json
import sys
import urllib.error
import urllib.request

PUBLIC = {"Healthz", "Readyz", "Metrics"}
FILLER = {"key": "00000000-0000-0000-0000-000000000000", "grant_id": "00000000-0000-0000-0000-000000000000", "name": "alias%2Fx"}


def main(base: str, spec_path: str) -> None:
    spec = json.load(open(spec_path))
    failures, checked = [], 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            op_id = op["operationId"]
            if not op.get("security"):
                if op_id not in PUBLIC:
                    failures.append(f"{op_id} declares no security requirement")
                continue
            url = base + "".join(FILLER.get(part[1:-1], part) if part.startswith("{") else part for part in _split(path))
            body = b"{}" if method in ("post", "put", "patch") else None
            req = urllib.request.Request(url, data=body, method=method.upper(), headers={"Content-Type": "application/json"})
            try:
                status, payload = urllib.request.urlopen(req).status, b""
            except urllib.error.HTTPError as e:
                status, payload = e.code, e.read()
            checked += 1
            problem = json.loads(payload or b"{}")
            if status != 401 or problem.get("code") != "Unauthenticated":
                failures.append(f"{op_id} {method.upper()} {path}: {status} {problem.get('code')}")
    if failures:
        sys.exit("operations not refusing a missing token:\n  " + "\n  ".join(failures))
    print(f"unauthenticated: all {checked} protected operations answered 401 Unauthenticated")


def _split(path: str):
    out, cur = [], ""
    for ch in path:
        if ch == "{":
            out.append(cur)
            cur = "{"
        elif ch == "}":
            out.append(cur + "}")
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
