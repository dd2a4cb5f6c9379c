"""Checks Keyward's Kubernetes KMS v2 plugin the way kube-apiserver uses it, with stubs that
grpcio-tools generates from Keyward's .proto (Kubernetes' package, messages and fields), and
a smoke call with grpcurl.

    python kms_v2_check.py SOCKET PROTO_DIR BASE ADMIN_TOKEN
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import urllib.request
import uuid

import grpc
from grpc_tools import protoc

SOCKET, PROTO_DIR, BASE, TOKEN = sys.argv[1:5]
OUT = tempfile.mkdtemp()
assert protoc.main(["protoc", f"-I{PROTO_DIR}", f"--python_out={OUT}", f"--grpc_python_out={OUT}", "kms_v2.proto"]) == 0
sys.path.insert(0, OUT)
import kms_v2_pb2 as pb  # noqa: E402
import kms_v2_pb2_grpc as rpc  # noqa: E402

FQDN = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$")


def rest(method, path, body=None):
    req = urllib.request.Request(BASE + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")


class ApiserverChecks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # As kube-apiserver dials plugins: `:authority` localhost (a socket path is no authority).
        cls.channel = grpc.insecure_channel(f"unix://{SOCKET}", options=[("grpc.default_authority", "localhost")])
        cls.kms = rpc.KeyManagementServiceStub(cls.channel)

    def status(self):
        return self.kms.Status(pb.StatusRequest(), timeout=5)

    def encrypt(self, plaintext, uid=None):
        return self.kms.Encrypt(pb.EncryptRequest(plaintext=plaintext, uid=uid or str(uuid.uuid4())), timeout=5)

    def decrypt(self, enc, uid=None):
        req = pb.DecryptRequest(ciphertext=enc.ciphertext, uid=uid or str(uuid.uuid4()), key_id=enc.key_id)
        for k, v in enc.annotations.items():
            req.annotations[k] = v
        return self.kms.Decrypt(req, timeout=5)

    def check_encrypt_response(self, enc, key_id):
        # What the apiserver validates before it stores anything.
        self.assertTrue(0 < len(enc.ciphertext) <= 1024, len(enc.ciphertext))
        self.assertTrue(0 < len(enc.key_id) <= 1024)
        self.assertEqual(enc.key_id, key_id, "Encrypt names the key id Status reports")
        for k in enc.annotations:
            self.assertRegex(k, FQDN, "annotation keys are fully qualified domain names")
        self.assertLessEqual(sum(len(k) + len(v) for k, v in enc.annotations.items()), 32 * 1024)

    def test_1_status_encrypt_decrypt(self):
        st = self.status()
        self.assertEqual((st.version, st.healthz), ("v2", "ok"))
        self.assertTrue(0 < len(st.key_id) <= 1024)
        seed = os.urandom(32)
        enc = self.encrypt(seed)
        self.check_encrypt_response(enc, st.key_id)
        self.assertEqual(self.decrypt(enc).plaintext, seed)

    def test_2_rotation_changes_the_key_id_and_keeps_old_ciphertexts(self):
        before = self.status().key_id
        seed = os.urandom(32)
        enc = self.encrypt(seed)
        rest("POST", "/v1/keys/alias%2Fkubernetes-secrets/rotate", {})
        after = self.status()
        self.assertEqual(after.healthz, "ok")
        self.assertNotEqual(after.key_id, before)
        self.assertEqual(self.decrypt(enc).plaintext, seed, "ciphertexts from before the rotation decrypt")
        self.check_encrypt_response(self.encrypt(seed), after.key_id)

    def test_3_refusals(self):
        enc = self.encrypt(os.urandom(32))
        bad = pb.EncryptResponse(ciphertext=enc.ciphertext[:-1] + bytes([enc.ciphertext[-1] ^ 1]), key_id=enc.key_id)
        with self.assertRaises(grpc.RpcError) as e:
            self.decrypt(bad)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as e:
            self.encrypt(b"")
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_4_audited_by_uid(self):
        uid = str(uuid.uuid4())
        self.encrypt(os.urandom(32), uid)
        records = rest("GET", "/v1/audit?action=Encrypt&limit=200")["records"]
        mine = [r for r in records if r["request_id"] == uid]
        self.assertEqual(len(mine), 1, "one record, named by the request uid")
        self.assertEqual((mine[0]["interface"], mine[0]["outcome"]), ("kubernetes", "Success"))

    def test_5_grpcurl(self):
        out = subprocess.run(
            ["grpcurl", "-plaintext", "-unix", "-authority", "localhost", "-import-path", PROTO_DIR, "-proto", "kms_v2.proto",
             SOCKET, "v2.KeyManagementService/Status"],
            capture_output=True, text=True,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        answer = json.loads(out.stdout)
        self.assertEqual((answer["version"], answer["healthz"]), ("v2", "ok"), out.stdout)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
