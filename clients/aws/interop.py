"""Keyward's AWS KMS-compatible API driven by unchanged AWS clients: boto3, the AWS CLI, the
AWS Encryption SDK CLI and sops, each pointed at Keyward only through AWS_ENDPOINT_URL_KMS.
Signature attacks are sent by hand (botocore's own signer, then altered). Every refusal is
checked in the audit trail. Signing and MAC keys are checked with tools nobody here wrote:
signatures verify with `cryptography` given only GetPublicKey's DER, JWTs signed through Sign
(ES256, RS256, PS256, EdDSA) verify with PyJWT, and the AWS CLI signs and verifies. Imported
key material is wrapped with `cryptography` as AWS's import guide does: MACs equal Python's
`hmac` over the same material, and AES blobs open with `cryptography` and the material alone.

Usage: interop.py BASE_URL ADMIN_TOKEN WORKDIR   (run by scripts/test-aws-clients.sh)
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
import unittest
import unittest.mock
import urllib.error
import urllib.request
import uuid

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

BASE, TOKEN, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
RUN = uuid.uuid4().hex[:8]


def rest(method, path, body=None, token=TOKEN):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def access_key(name, groups, namespace):
    status, body = rest("POST", "/v1/access-keys", {
        "principal": f'Keyward::User::"{name}-{RUN}"', "groups": groups, "default_namespace": namespace})
    assert status == 201, (status, body)
    assert len(body["secret_access_key"]) == 40 and body["access_key_id"].startswith("KW"), body
    return body


ALICE = access_key("alice", [f"payments{RUN}"], f"payments{RUN}")
ADMIN = access_key("admin", ["admins"], f"payments{RUN}")
BOB = access_key("bob", [f"other{RUN}"], f"other{RUN}")


def env_for(key):
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": key["access_key_id"], "AWS_SECRET_ACCESS_KEY": key["secret_access_key"],
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_KMS": BASE,
        "AWS_EC2_METADATA_DISABLED": "true", "SOPS_DISABLE_VERSION_CHECK": "1",
    })
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    return env


def kms(key, region="us-east-1"):
    # Only the endpoint differs from a client of AWS KMS.
    session = boto3.session.Session(aws_access_key_id=key["access_key_id"],
                                    aws_secret_access_key=key["secret_access_key"], region_name=region)
    return session.client("kms", endpoint_url=BASE,
                          config=botocore.config.Config(retries={"max_attempts": 1}))


def audit(request_id):
    status, body = rest("GET", "/v1/audit?limit=1000&action=&principal=")
    assert status == 200, body
    found = [r for r in body["records"] if r["request_id"] == request_id]
    return found


def audit_by_request(request_id):
    """The records with this request id (paging through the trail)."""
    token, found = None, []
    while True:
        path = "/v1/audit?limit=1000" + (f"&next_token={token}" if token else "")
        status, body = rest("GET", path)
        assert status == 200, body
        found += [r for r in body["records"] if r["request_id"] == request_id]
        token = body.get("next_token")
        if not token:
            return found


def error_code(exc):
    return exc.response["Error"]["Code"]


class Boto3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.alice, cls.bob = kms(ALICE), kms(BOB)
        cls.key = cls.alice.create_key(Description="interop", Tags=[{"TagKey": "team", "TagValue": "payments"}])["KeyMetadata"]
        cls.arn = cls.key["Arn"]
        cls.alias = f"alias/interop-{RUN}"
        cls.alice.create_alias(AliasName=cls.alias, TargetKeyId=cls.key["KeyId"])

    def test_key_is_described_by_every_spelling(self):
        self.assertRegex(self.arn, r"^arn:aws:kms:us-east-1:000000000000:key/[0-9a-f-]{36}$")
        for spelling in [self.key["KeyId"], self.arn, self.alias,
                         f"arn:aws:kms:us-east-1:000000000000:{self.alias}"]:
            m = self.alice.describe_key(KeyId=spelling)["KeyMetadata"]
            self.assertEqual((m["Arn"], m["KeyState"], m["KeyUsage"], m["Enabled"]),
                             (self.arn, "Enabled", "ENCRYPT_DECRYPT", True))
        keys = [k["KeyArn"] for k in self.alice.list_keys()["Keys"]]
        self.assertIn(self.arn, keys)
        aliases = {a["AliasName"]: a["TargetKeyId"] for a in self.alice.list_aliases(KeyId=self.arn)["Aliases"]}
        self.assertEqual(aliases.get(self.alias), self.key["KeyId"])

    def test_encrypt_decrypt_with_and_without_context(self):
        for ctx in [{}, {"table": "orders", "tenant": "acme"}]:
            kw = {"EncryptionContext": ctx} if ctx else {}
            enc = self.alice.encrypt(KeyId=self.alias, Plaintext=b"secret bytes", **kw)
            self.assertEqual(enc["KeyId"], self.arn)
            dec = self.alice.decrypt(CiphertextBlob=enc["CiphertextBlob"], **kw)
            self.assertEqual((dec["Plaintext"], dec["KeyId"]), (b"secret bytes", self.arn))
            dec = self.alice.decrypt(CiphertextBlob=enc["CiphertextBlob"], KeyId=self.arn, **kw)
            self.assertEqual(dec["Plaintext"], b"secret bytes")

    def test_wrong_context_wrong_key_and_tampering(self):
        enc = self.alice.encrypt(KeyId=self.arn, Plaintext=b"x", EncryptionContext={"a": "1"})
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "2"})
        self.assertEqual(error_code(e.exception), "InvalidCiphertextException")
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        other = self.alice.create_key()["KeyMetadata"]["Arn"]
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "1"}, KeyId=other)
        self.assertEqual(error_code(e.exception), "IncorrectKeyException")
        blob = bytearray(enc["CiphertextBlob"])
        blob[-1] ^= 1
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.decrypt(CiphertextBlob=bytes(blob), EncryptionContext={"a": "1"})
        self.assertEqual(error_code(e.exception), "InvalidCiphertextException")

    def test_data_key_used_locally(self):
        dk = self.alice.generate_data_key(KeyId=self.arn, KeySpec="AES_256", EncryptionContext={"f": "1"})
        self.assertEqual((len(dk["Plaintext"]), dk["KeyId"]), (32, self.arn))
        nonce = os.urandom(12)
        sealed = AESGCM(dk["Plaintext"]).encrypt(nonce, b"bulk data", None)
        key = self.alice.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"f": "1"})["Plaintext"]
        self.assertEqual(AESGCM(key).decrypt(nonce, sealed, None), b"bulk data")
        wp = self.alice.generate_data_key_without_plaintext(KeyId=self.arn, NumberOfBytes=16)
        self.assertNotIn("Plaintext", wp)
        self.assertEqual(len(self.alice.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]), 16)
        # GenerateRandom is decided on the namespace: the default policies allow it to admins.
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.generate_random(NumberOfBytes=64)
        self.assertEqual(error_code(e.exception), "AccessDeniedException")
        self.assertEqual(len(kms(ADMIN).generate_random(NumberOfBytes=64)["Plaintext"]), 64)

    def test_validation_in_aws_form(self):
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.encrypt(KeyId=self.arn, Plaintext=b"x" * 4097)
        self.assertEqual(error_code(e.exception), "ValidationException")
        self.assertIn("1 validation error detected: Value at 'plaintext' failed to satisfy constraint",
                      e.exception.response["Error"]["Message"])
        missing = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            kms(ADMIN).describe_key(KeyId=missing)
        self.assertEqual(error_code(e.exception), "NotFoundException")
        # To a caller without access, a missing key looks like a forbidden one.
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.describe_key(KeyId=missing)
        self.assertEqual(error_code(e.exception), "AccessDeniedException")

    def test_re_encrypt_and_rotation(self):
        second = self.alice.create_key(Description="second")["KeyMetadata"]["Arn"]
        enc = self.alice.encrypt(KeyId=self.arn, Plaintext=b"move me", EncryptionContext={"c": "1"})
        re = self.alice.re_encrypt(CiphertextBlob=enc["CiphertextBlob"], SourceEncryptionContext={"c": "1"},
                                   DestinationKeyId=second, DestinationEncryptionContext={"c": "2"})
        self.assertEqual((re["SourceKeyId"], re["KeyId"]), (self.arn, second))
        self.assertEqual(self.alice.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"c": "2"})["Plaintext"], b"move me")
        self.alice.enable_key_rotation(KeyId=second, RotationPeriodInDays=90)
        status = self.alice.get_key_rotation_status(KeyId=second)
        self.assertEqual((status["KeyRotationEnabled"], status["RotationPeriodInDays"]), (True, 90))
        old = self.alice.encrypt(KeyId=second, Plaintext=b"v1")["CiphertextBlob"]
        self.alice.rotate_key_on_demand(KeyId=second)
        self.assertEqual(len(self.alice.list_key_rotations(KeyId=second)["Rotations"]), 1)
        self.assertEqual(self.alice.decrypt(CiphertextBlob=old)["Plaintext"], b"v1")
        self.alice.disable_key_rotation(KeyId=second)
        self.assertFalse(self.alice.get_key_rotation_status(KeyId=second)["KeyRotationEnabled"])

    def test_disable_and_pending_deletion(self):
        arn = self.alice.create_key()["KeyMetadata"]["Arn"]
        self.alice.disable_key(KeyId=arn)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.encrypt(KeyId=arn, Plaintext=b"x")
        self.assertEqual(error_code(e.exception), "DisabledException")
        self.alice.enable_key(KeyId=arn)
        self.alice.encrypt(KeyId=arn, Plaintext=b"x")
        out = self.alice.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
        self.assertEqual((out["KeyState"], out["PendingWindowInDays"]), ("PendingDeletion", 7))
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.encrypt(KeyId=arn, Plaintext=b"x")
        self.assertEqual(error_code(e.exception), "KMSInvalidStateException")
        self.assertEqual(self.alice.cancel_key_deletion(KeyId=arn)["KeyId"], arn)
        self.assertEqual(self.alice.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"], "Disabled")

    def test_other_principal_is_denied_and_dry_run(self):
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.bob.encrypt(KeyId=self.arn, Plaintext=b"x")
        self.assertEqual(error_code(e.exception), "AccessDeniedException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.encrypt(KeyId=self.arn, Plaintext=b"x", DryRun=True)
        self.assertEqual(error_code(e.exception), "DryRunOperationException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.bob.encrypt(KeyId=self.arn, Plaintext=b"x", DryRun=True)
        self.assertEqual(error_code(e.exception), "AccessDeniedException")

    def test_tags_and_aliases(self):
        self.alice.tag_resource(KeyId=self.arn, Tags=[{"TagKey": "env", "TagValue": "test"}])
        tags = {t["TagKey"]: t["TagValue"] for t in self.alice.list_resource_tags(KeyId=self.arn)["Tags"]}
        self.assertEqual(tags, {"team": "payments", "env": "test"})
        self.alice.untag_resource(KeyId=self.arn, TagKeys=["env"])
        tags = {t["TagKey"] for t in self.alice.list_resource_tags(KeyId=self.arn)["Tags"]}
        self.assertEqual(tags, {"team"})
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.create_alias(AliasName=self.alias, TargetKeyId=self.key["KeyId"])
        self.assertEqual(error_code(e.exception), "AlreadyExistsException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.update_alias(AliasName=f"alias/missing-{RUN}", TargetKeyId=self.key["KeyId"])
        self.assertEqual(error_code(e.exception), "NotFoundException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.create_alias(AliasName="not-an-alias", TargetKeyId=self.key["KeyId"])
        self.assertIn(error_code(e.exception), ("InvalidAliasNameException", "ValidationException"))
        self.alice.update_key_description(KeyId=self.arn, Description="renamed")
        self.assertEqual(self.alice.describe_key(KeyId=self.arn)["KeyMetadata"]["Description"], "renamed")

    def test_grants_delegate_and_retire(self):
        grantee = f'Keyward::User::"bob-{RUN}"'
        g = self.alice.create_grant(KeyId=self.arn, GranteePrincipal=grantee, Operations=["Encrypt"])
        self.bob.encrypt(KeyId=self.arn, Plaintext=b"via grant")
        listed = [x["GrantId"] for x in self.alice.list_grants(KeyId=self.arn)["Grants"]]
        self.assertIn(g["GrantId"], listed)
        # A named retiring principal finds the grants it is expected to retire.
        r = self.alice.create_grant(KeyId=self.arn, GranteePrincipal=grantee, Operations=["Decrypt"],
                                    RetiringPrincipal=f'Keyward::Service::"janitor-{RUN}"')
        retirable = self.alice.list_retirable_grants(RetiringPrincipal=f'Keyward::Service::"janitor-{RUN}"')["Grants"]
        self.assertEqual([x["GrantId"] for x in retirable], [r["GrantId"]])
        self.assertEqual(retirable[0]["RetiringPrincipal"], f'Keyward::Service::"janitor-{RUN}"')
        self.assertEqual(self.bob.list_retirable_grants(RetiringPrincipal=f'Keyward::Service::"janitor-{RUN}"')["Grants"], [],
                         "only grants on keys the caller may list")
        self.alice.retire_grant(KeyId=self.arn, GrantId=r["GrantId"])
        self.alice.retire_grant(GrantToken=g["GrantToken"])
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.bob.encrypt(KeyId=self.arn, Plaintext=b"x")
        self.assertEqual(error_code(e.exception), "AccessDeniedException")

    def test_any_region_is_accepted_and_unsupported_operations_say_so(self):
        eu = kms(ALICE, region="eu-west-1")
        self.assertEqual(eu.describe_key(KeyId=self.arn)["KeyMetadata"]["Arn"], self.arn)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.list_key_policies(KeyId=self.arn)
        self.assertEqual(error_code(e.exception), "UnsupportedOperationException")

    def test_every_call_leaves_one_record_marked_aws(self):
        enc = self.alice.encrypt(KeyId=self.arn, Plaintext=b"audited")
        rid = enc["ResponseMetadata"]["RequestId"]
        records = audit_by_request(rid)
        self.assertEqual(len(records), 1, records)
        r = records[0]
        self.assertEqual((r["interface"], r["action"], r["decision"], r["outcome"], r["principal"]),
                         ("aws-kms", "Encrypt", "Allow", "Success", f'Keyward::User::"alice-{RUN}"'))
        self.assertIn("owner-user", r["determining_policies"])
        # The same question through REST gets the same answer.
        status, ask = rest("POST", "/v1/authorize", {"principal": r["principal"], "groups": r["principal_groups"],
                                                    "action": "Encrypt", "resource": f'Keyward::Key::"{self.key["KeyId"]}"'})
        self.assertEqual(status, 200, ask)
        self.assertEqual((ask["decision"], sorted(ask["determining_policies"])),
                         ("Allow", sorted(r["determining_policies"])))


class Signatures(unittest.TestCase):
    """Hand-signed requests, each altered one way. Each is refused with AWS's error name,
    audited, and runs nothing."""

    def send(self, headers, body):
        req = urllib.request.Request(BASE + "/", data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.loads(r.read()), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), e.headers

    def signed(self, key, body, secret=None, when=None, target="TrentService.CreateKey"):
        creds = Credentials(key["access_key_id"], secret or key["secret_access_key"])
        req = AWSRequest(method="POST", url=BASE + "/", data=body, headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
        auth = SigV4Auth(creds, "kms", "us-east-1")
        if when is None:
            auth.add_auth(req)
        else:
            # botocore reads the clock through this function: sign as if it were `when`.
            with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
                auth.add_auth(req)
        return dict(req.headers.items())

    def count_keys(self):
        status, body = rest("GET", f"/v1/keys?namespace=payments{RUN}&limit=1000")
        assert status == 200, body
        return len(body["keys"])

    def refused(self, headers, body, name):
        before = self.count_keys()
        status, answer, response_headers = self.send(headers, body)
        self.assertEqual((status, answer["__type"]), (400, name), answer)
        self.assertEqual(self.count_keys(), before, "nothing was created")
        rid = response_headers.get("x-amzn-RequestId")
        records = audit_by_request(rid)
        self.assertEqual(len(records), 1, (rid, records))
        self.assertEqual((records[0]["interface"], records[0]["outcome"]), ("aws-kms", "Unauthenticated"))
        return answer

    def test_a_good_signature_works(self):
        body = b'{"Description":"signed by hand"}'
        status, answer, headers = self.send(self.signed(ALICE, body), body)
        self.assertEqual(status, 200, answer)
        self.assertEqual(headers["Content-Type"], "application/x-amz-json-1.1")
        self.assertIn("Date", headers)

    def test_wrong_secret(self):
        body = b'{"Description":"x"}'
        self.refused(self.signed(ALICE, body, secret="A" * 40), body, "InvalidSignatureException")

    def test_tampered_body(self):
        body = b'{"Description":"x"}'
        self.refused(self.signed(ALICE, body), b'{"Description":"y"}', "InvalidSignatureException")

    def test_tampered_signed_header(self):
        body = b'{"Description":"x"}'
        h = self.signed(ALICE, body)
        h["X-Amz-Target"] = "TrentService.ScheduleKeyDeletion"
        self.refused(h, body, "InvalidSignatureException")

    def test_date_six_minutes_off(self):
        body = b'{"Description":"x"}'
        for minutes in (-6, 6):
            when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
            answer = self.refused(self.signed(ALICE, body, when=when), body, "InvalidSignatureException")
            self.assertTrue(answer["message"].startswith("Signature expired" if minutes < 0 else "Signature not yet current"), answer)

    def test_unknown_access_key(self):
        body = b'{"Description":"x"}'
        ghost = {"access_key_id": "KW" + "A" * 18, "secret_access_key": "B" * 40}
        self.refused(self.signed(ghost, body), body, "UnrecognizedClientException")

    def test_missing_authorization(self):
        body = b'{"Description":"x"}'
        h = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.CreateKey"}
        self.refused(h, body, "MissingAuthenticationTokenException")

    def test_incomplete_authorization(self):
        body = b'{"Description":"x"}'
        h = self.signed(ALICE, body)
        h["Authorization"] = h["Authorization"].split(", Signature=")[0]
        self.refused(h, body, "IncompleteSignatureException")

    def test_session_token_is_refused(self):
        body = b'{"Description":"x"}'
        h = self.signed(ALICE, body)
        h["X-Amz-Security-Token"] = "anything"
        self.refused(h, body, "UnrecognizedClientException")

    def test_deleted_access_key(self):
        doomed = access_key("doomed", [f"payments{RUN}"], f"payments{RUN}")
        body = b'{"Description":"x"}'
        status, _, _ = self.send(self.signed(doomed, body), body)
        self.assertEqual(status, 200)
        status, _ = rest("DELETE", f"/v1/access-keys/{doomed['access_key_id']}")
        self.assertEqual(status, 204)
        self.refused(self.signed(doomed, body), body, "UnrecognizedClientException")

    def test_oversized_and_malformed_bodies(self):
        body = b"{" + b" " * (70 * 1024) + b"}"
        status, answer, _ = self.send(self.signed(ALICE, body), body)
        self.assertEqual((status, answer["__type"]), (400, "ValidationException"), answer)
        body = b"{not json"
        status, answer, _ = self.send(self.signed(ALICE, body), body)
        self.assertEqual((status, answer["__type"]), (400, "ValidationException"), answer)


class Signing(unittest.TestCase):
    """Signing and MAC keys through boto3, checked with `cryptography` and PyJWT."""

    @classmethod
    def setUpClass(cls):
        cls.alice, cls.bob = kms(ALICE), kms(BOB)
        cls.keys = {}
        for spec in ["RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_NIST_EDWARDS25519"]:
            m = cls.alice.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY", Description=f"sign {spec}")["KeyMetadata"]
            cls.keys[spec] = m

    def public(self, spec):
        out = self.alice.get_public_key(KeyId=self.keys[spec]["Arn"])
        self.assertEqual((out["KeySpec"], out["KeyUsage"]), (spec, "SIGN_VERIFY"))
        return out, serialization.load_der_public_key(out["PublicKey"])

    def test_metadata_names_spec_usage_and_algorithms(self):
        m = self.alice.describe_key(KeyId=self.keys["ECC_NIST_P256"]["KeyId"])["KeyMetadata"]
        self.assertEqual((m["KeySpec"], m["KeyUsage"], m["SigningAlgorithms"]), ("ECC_NIST_P256", "SIGN_VERIFY", ["ECDSA_SHA_256"]))
        self.assertNotIn("EncryptionAlgorithms", m)
        rsa = self.keys["RSA_2048"]
        self.assertEqual(len(rsa["SigningAlgorithms"]), 6)

    def test_ecdsa_signatures_verify_with_cryptography(self):
        message = b"release tarball v1.2.3"
        for spec, alg, h in [("ECC_NIST_P256", "ECDSA_SHA_256", hashes.SHA256()),
                             ("ECC_NIST_P384", "ECDSA_SHA_384", hashes.SHA384()),
                             ("ECC_NIST_P521", "ECDSA_SHA_512", hashes.SHA512())]:
            arn = self.keys[spec]["Arn"]
            _, pub = self.public(spec)
            sig = self.alice.sign(KeyId=arn, Message=message, MessageType="RAW", SigningAlgorithm=alg)
            self.assertEqual((sig["KeyId"], sig["SigningAlgorithm"]), (arn, alg))
            pub.verify(sig["Signature"], message, ec.ECDSA(h))
            # A digest signed as DIGEST verifies against the message.
            digest = hashes.Hash(h)
            digest.update(message)
            sig2 = self.alice.sign(KeyId=arn, Message=digest.finalize(), MessageType="DIGEST", SigningAlgorithm=alg)
            pub.verify(sig2["Signature"], message, ec.ECDSA(h))
            ok = self.alice.verify(KeyId=arn, Message=message, Signature=sig["Signature"], SigningAlgorithm=alg)
            self.assertTrue(ok["SignatureValid"])
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.alice.verify(KeyId=arn, Message=b"tampered", Signature=sig["Signature"], SigningAlgorithm=alg)
            self.assertEqual(error_code(e.exception), "KMSInvalidSignatureException")

    def test_rsa_pss_and_pkcs1_verify_with_cryptography(self):
        arn = self.keys["RSA_2048"]["Arn"]
        _, pub = self.public("RSA_2048")
        message = b"document to sign"
        for alg, h in [("RSASSA_PSS_SHA_256", hashes.SHA256()), ("RSASSA_PSS_SHA_512", hashes.SHA512()),
                       ("RSASSA_PKCS1_V1_5_SHA_256", hashes.SHA256()), ("RSASSA_PKCS1_V1_5_SHA_384", hashes.SHA384())]:
            sig = self.alice.sign(KeyId=arn, Message=message, SigningAlgorithm=alg)["Signature"]
            self.assertEqual(len(sig), 256)
            pad = (padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH) if "PSS" in alg
                   else padding.PKCS1v15())
            pub.verify(sig, message, pad, h)
            with self.assertRaises(InvalidSignature):
                pub.verify(sig, b"other", pad, h)

    def test_ed25519_verifies_with_cryptography(self):
        arn = self.keys["ECC_NIST_EDWARDS25519"]["Arn"]
        _, pub = self.public("ECC_NIST_EDWARDS25519")
        sig = self.alice.sign(KeyId=arn, Message=b"ed message", MessageType="RAW", SigningAlgorithm="ED25519_SHA_512")
        pub.verify(sig["Signature"], b"ed message")

    def jwt_through_sign(self, spec, jws_alg, kms_alg):
        header = {"alg": jws_alg, "typ": "JWT", "kid": self.keys[spec]["KeyId"]}
        claims = {"sub": "build-42", "iss": "keyward-interop", "aud": "deploy"}
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=")
        signing_input = enc(header) + b"." + enc(claims)
        sig = self.alice.sign(KeyId=self.keys[spec]["Arn"], Message=signing_input, SigningAlgorithm=kms_alg)["Signature"]
        if jws_alg.startswith("ES"):
            # JWS carries r || s, not DER.
            r, s_ = utils.decode_dss_signature(sig)
            size = {"ES256": 32, "ES384": 48, "ES512": 66}[jws_alg]
            sig = r.to_bytes(size, "big") + s_.to_bytes(size, "big")
        token = (signing_input + b"." + base64.urlsafe_b64encode(sig).rstrip(b"=")).decode()
        out, _ = self.public(spec)
        pem = serialization.load_der_public_key(out["PublicKey"]).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        decoded = jwt.decode(token, pem, algorithms=[jws_alg], audience="deploy")
        self.assertEqual(decoded["sub"], "build-42")
        with self.assertRaises(jwt.InvalidSignatureError):
            jwt.decode(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), pem, algorithms=[jws_alg],
                       audience="deploy")

    def test_jwts_signed_through_sign_verify_with_pyjwt(self):
        self.jwt_through_sign("ECC_NIST_P256", "ES256", "ECDSA_SHA_256")
        self.jwt_through_sign("ECC_NIST_P384", "ES384", "ECDSA_SHA_384")
        self.jwt_through_sign("RSA_2048", "RS256", "RSASSA_PKCS1_V1_5_SHA_256")
        self.jwt_through_sign("RSA_2048", "PS256", "RSASSA_PSS_SHA_256")
        self.jwt_through_sign("ECC_NIST_EDWARDS25519", "EdDSA", "ED25519_SHA_512")

    def test_hmac_generate_and_verify(self):
        key = self.alice.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
        self.assertEqual(key["MacAlgorithms"], ["HMAC_SHA_256"])
        mac = self.alice.generate_mac(KeyId=key["Arn"], Message=b"webhook", MacAlgorithm="HMAC_SHA_256")
        self.assertEqual(len(mac["Mac"]), 32)
        ok = self.alice.verify_mac(KeyId=key["Arn"], Message=b"webhook", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_256")
        self.assertTrue(ok["MacValid"])
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.verify_mac(KeyId=key["Arn"], Message=b"webhooK", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_256")
        self.assertEqual(error_code(e.exception), "KMSInvalidMacException")

    def test_rsa_oaep_encryption(self):
        key = self.alice.create_key(KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
        self.assertEqual(key["EncryptionAlgorithms"], ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"])
        arn = key["Arn"]
        enc = self.alice.encrypt(KeyId=arn, Plaintext=b"wrapped", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
        self.assertEqual((enc["EncryptionAlgorithm"], len(enc["CiphertextBlob"])), ("RSAES_OAEP_SHA_256", 384))
        dec = self.alice.decrypt(KeyId=arn, CiphertextBlob=enc["CiphertextBlob"], EncryptionAlgorithm="RSAES_OAEP_SHA_256")
        self.assertEqual(dec["Plaintext"], b"wrapped")
        # Encrypted outside with the public key alone, as AWS documents for offline use.
        pub = serialization.load_der_public_key(self.alice.get_public_key(KeyId=arn)["PublicKey"])
        outside = pub.encrypt(b"offline", padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
        dec = self.alice.decrypt(KeyId=arn, CiphertextBlob=outside, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
        self.assertEqual(dec["Plaintext"], b"offline")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.decrypt(KeyId=arn, CiphertextBlob=outside, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
        self.assertEqual(error_code(e.exception), "InvalidCiphertextException")

    def test_data_key_pairs(self):
        sym = self.alice.create_key(Description="wraps data key pairs")["KeyMetadata"]["Arn"]
        ctx = {"device": "sensor-7"}
        for spec in ["ECC_NIST_P256", "RSA_2048"]:
            out = self.alice.generate_data_key_pair(KeyId=sym, KeyPairSpec=spec, EncryptionContext=ctx)
            self.assertEqual((out["KeyId"], out["KeyPairSpec"]), (sym, spec))
            private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
            public = private.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
            self.assertEqual(public, out["PublicKey"])
            back = self.alice.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext=ctx)
            self.assertEqual(back["Plaintext"], out["PrivateKeyPlaintext"])
        bare = self.alice.generate_data_key_pair_without_plaintext(KeyId=sym, KeyPairSpec="ECC_NIST_P384")
        self.assertNotIn("PrivateKeyPlaintext", bare)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.generate_data_key_pair(KeyId=self.keys["ECC_NIST_P256"]["Arn"], KeyPairSpec="ECC_NIST_P256")
        self.assertEqual(error_code(e.exception), "InvalidKeyUsageException")

    def test_usage_other_principals_and_the_aws_cli(self):
        arn = self.keys["ECC_NIST_P256"]["Arn"]
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.encrypt(KeyId=arn, Plaintext=b"x")
        self.assertEqual(error_code(e.exception), "InvalidKeyUsageException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.sign(KeyId=arn, Message=b"x", SigningAlgorithm="RSASSA_PSS_SHA_256")
        self.assertEqual(error_code(e.exception), "InvalidKeyUsageException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.bob.sign(KeyId=arn, Message=b"x", SigningAlgorithm="ECDSA_SHA_256")
        self.assertEqual(error_code(e.exception), "AccessDeniedException")
        msg = os.path.join(WORK, "to-sign.txt")
        with open(msg, "wb") as f:
            f.write(b"signed with the aws cli")
        env = env_for(ALICE)
        sig = run(["aws", "kms", "sign", "--key-id", arn, "--message", f"fileb://{msg}", "--message-type", "RAW",
                   "--signing-algorithm", "ECDSA_SHA_256", "--output", "text", "--query", "Signature"], env)
        sig_file = os.path.join(WORK, "cli.sig")
        with open(sig_file, "wb") as f:
            f.write(base64.b64decode(sig.strip()))
        out = json.loads(run(["aws", "kms", "verify", "--key-id", arn, "--message", f"fileb://{msg}",
                              "--signature", f"fileb://{sig_file}", "--signing-algorithm", "ECDSA_SHA_256"], env))
        self.assertTrue(out["SignatureValid"])


def wrap_material(public_der, algorithm, material):
    """What AWS's import guide has users do, with `cryptography`."""
    public = serialization.load_der_public_key(public_der)
    h = hashes.SHA256() if algorithm.endswith("SHA_256") else hashes.SHA1()
    oaep = padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, oaep)
    aes = os.urandom(32)
    return public.encrypt(aes, oaep) + aes_key_wrap_with_padding(aes, material)


def open_blob(material, blob, context):
    """A Keyward blob (docs/ciphertext-format.md, algorithm 1) opened with the material alone."""
    assert blob[:3] == b"KW\x01" and blob[23] == 1, blob[:24]
    p = int.from_bytes(blob[24:26], "big")
    header, ciphertext = blob[:26 + p], blob[26 + p:]
    salt, commitment = header[26:58], header[58:90]
    okm = HKDF(algorithm=hashes.SHA256(), length=76, salt=salt,
               info=b"keyward/v1/aes-256-gcm/hkdf-sha256/commit").derive(material)
    assert hmac.compare_digest(okm[44:], commitment)
    aad = header + len(context).to_bytes(4, "big")
    for k in sorted(context):
        for part in (k.encode(), context[k].encode()):
            aad += len(part).to_bytes(4, "big") + part
    return AESGCM(okm[:32]).decrypt(okm[32:44], ciphertext, aad)


class Import(unittest.TestCase):
    """Bring your own key through boto3 and the AWS CLI, as AWS's import guide does it."""

    @classmethod
    def setUpClass(cls):
        cls.alice, cls.bob = kms(ALICE), kms(BOB)

    def external(self, **kw):
        m = self.alice.create_key(Origin="EXTERNAL", **kw)["KeyMetadata"]
        self.assertEqual((m["Origin"], m["KeyState"], m["Enabled"]), ("EXTERNAL", "PendingImport", False))
        return m["Arn"]

    def bring(self, arn, material, algorithm="RSA_AES_KEY_WRAP_SHA_256", **kw):
        params = self.alice.get_parameters_for_import(KeyId=arn, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048")
        self.assertGreater(params["ParametersValidTo"], datetime.datetime.now(datetime.timezone.utc))
        wrapped = wrap_material(params["PublicKey"], algorithm, material)
        kw.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
        return self.alice.import_key_material(KeyId=arn, ImportToken=params["ImportToken"],
                                              EncryptedKeyMaterial=wrapped, **kw)

    def test_aes_material_decrypts_outside_and_comes_back_only_as_itself(self):
        arn = self.external(Description="byok aes")
        material = os.urandom(32)
        self.bring(arn, material, "RSAES_OAEP_SHA_256")
        ctx = {"tenant": "acme"}
        blob = self.alice.encrypt(KeyId=arn, Plaintext=b"imported", EncryptionContext=ctx)["CiphertextBlob"]
        self.assertEqual(open_blob(material, blob, ctx), b"imported")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.bring(arn, material)
        self.assertEqual(error_code(e.exception), "KMSInvalidStateException")
        self.alice.delete_imported_key_material(KeyId=arn)
        self.assertEqual(self.alice.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"], "PendingImport")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
        self.assertEqual(error_code(e.exception), "KMSInvalidStateException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.bring(arn, os.urandom(32))
        self.assertEqual(error_code(e.exception), "IncorrectKeyMaterialException")
        self.bring(arn, material)
        self.assertEqual(self.alice.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"], b"imported")

    def test_hmac_material_macs_as_python_hmac(self):
        arn = self.external(KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")
        material = os.urandom(48)
        self.bring(arn, material)
        for message in [b"webhook", b"x" * 4096]:
            mac = self.alice.generate_mac(KeyId=arn, Message=message, MacAlgorithm="HMAC_SHA_384")["Mac"]
            self.assertEqual(mac, hmac.new(material, message, hashlib.sha384).digest())

    def test_ec_private_key_signs_for_its_own_public_key(self):
        arn = self.external(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        private = ec.generate_private_key(ec.SECP256R1())
        der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        self.bring(arn, der)
        public = private.public_key()
        spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertEqual(self.alice.get_public_key(KeyId=arn)["PublicKey"], spki)
        sig = self.alice.sign(KeyId=arn, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        public.verify(sig, b"m", ec.ECDSA(hashes.SHA256()))

    def test_refusals_in_aws_form(self):
        arn = self.external()
        params = self.alice.get_parameters_for_import(KeyId=arn, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                                      WrappingKeySpec="RSA_2048")
        wrapped = wrap_material(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
        cases = [
            (dict(ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped), "ValidationException"),
            (dict(ImportToken=b"\x01" + params["ImportToken"][1:20], EncryptedKeyMaterial=wrapped,
                  ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE"), "InvalidImportTokenException"),
            (dict(ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped[:-1] + b"\x00",
                  ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE"), "InvalidCiphertextException"),
        ]
        for kw, code in cases:
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.alice.import_key_material(KeyId=arn, **kw)
            self.assertEqual(error_code(e.exception), code, kw.keys())
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.bob.import_key_material(KeyId=arn, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                         ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
        self.assertEqual(error_code(e.exception), "AccessDeniedException")
        native = self.alice.create_key()["KeyMetadata"]["Arn"]
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.alice.get_parameters_for_import(KeyId=native, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                                 WrappingKeySpec="RSA_2048")
        self.assertEqual(error_code(e.exception), "UnsupportedOperationException")
        self.assertEqual(self.alice.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"], "PendingImport")

    def test_the_aws_cli_imports_with_an_expiry(self):
        arn = self.external(Description="byok via the aws cli")
        env = env_for(ALICE)
        params = json.loads(run(["aws", "kms", "get-parameters-for-import", "--key-id", arn,
                                 "--wrapping-algorithm", "RSA_AES_KEY_WRAP_SHA_256", "--wrapping-key-spec", "RSA_3072"], env))
        material = os.urandom(32)
        wrapped = wrap_material(base64.b64decode(params["PublicKey"]), "RSA_AES_KEY_WRAP_SHA_256", material)
        token_file, material_file = os.path.join(WORK, "import.token"), os.path.join(WORK, "material.wrapped")
        with open(token_file, "wb") as f:
            f.write(base64.b64decode(params["ImportToken"]))
        with open(material_file, "wb") as f:
            f.write(wrapped)
        valid_to = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).replace(microsecond=0)
        run(["aws", "kms", "import-key-material", "--key-id", arn, "--import-token", f"fileb://{token_file}",
             "--encrypted-key-material", f"fileb://{material_file}", "--expiration-model", "KEY_MATERIAL_EXPIRES",
             "--valid-to", valid_to.isoformat()], env)
        m = self.alice.describe_key(KeyId=arn)["KeyMetadata"]
        self.assertEqual((m["KeyState"], m["ExpirationModel"], m["ValidTo"]), ("Enabled", "KEY_MATERIAL_EXPIRES", valid_to))
        blob = self.alice.encrypt(KeyId=arn, Plaintext=b"cli")["CiphertextBlob"]
        self.assertEqual(open_blob(material, blob, {}), b"cli")
        run(["aws", "kms", "delete-imported-key-material", "--key-id", arn], env)
        self.assertEqual(self.alice.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"], "PendingImport")


def run(cmd, env, stdin=None):
    p = subprocess.run(cmd, env=env, input=stdin, capture_output=True)
    if p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}:\n{p.stdout.decode()}\n{p.stderr.decode()}")
    return p.stdout


class Tools(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = env_for(ALICE)
        cls.arn = kms(ALICE).create_key(Description="tools")["KeyMetadata"]["Arn"]

    def test_aws_cli(self):
        plain = os.path.join(WORK, "cli.txt")
        with open(plain, "wb") as f:
            f.write(b"from the aws cli")
        blob = run(["aws", "kms", "encrypt", "--key-id", self.arn, "--plaintext", f"fileb://{plain}",
                    "--encryption-context", "app=cli", "--output", "text", "--query", "CiphertextBlob"], self.env)
        blob_file = os.path.join(WORK, "cli.blob")
        with open(blob_file, "wb") as f:
            f.write(base64.b64decode(blob.strip()))
        out = run(["aws", "kms", "decrypt", "--ciphertext-blob", f"fileb://{blob_file}", "--encryption-context",
                   "app=cli", "--output", "text", "--query", "Plaintext"], self.env)
        self.assertEqual(base64.b64decode(out.strip()), b"from the aws cli")
        described = json.loads(run(["aws", "kms", "describe-key", "--key-id", self.arn], self.env))
        self.assertEqual(described["KeyMetadata"]["Arn"], self.arn)
        listed = json.loads(run(["aws", "kms", "list-keys"], self.env))
        self.assertIn(self.arn, [k["KeyArn"] for k in listed["Keys"]])

    def test_aws_encryption_sdk_cli(self):
        plain = os.path.join(WORK, "esdk.txt")
        data = os.urandom(200_000)
        with open(plain, "wb") as f:
            f.write(data)
        enc, back, back2 = (os.path.join(WORK, n) for n in ("esdk.enc", "esdk.out", "esdk.out2"))
        run(["aws-encryption-cli", "--encrypt", "--input", plain, "--output", enc, "--wrapping-keys",
             f"key={self.arn}", "--encryption-context", "purpose=interop", "--commitment-policy",
             "require-encrypt-require-decrypt", "-S"], self.env)
        run(["aws-encryption-cli", "--decrypt", "--input", enc, "--output", back, "--wrapping-keys",
             f"key={self.arn}", "--encryption-context", "purpose=interop", "--commitment-policy",
             "require-encrypt-require-decrypt", "-S"], self.env)
        with open(back, "rb") as f:
            self.assertEqual(f.read(), data)
        run(["aws-encryption-cli", "--decrypt", "--input", enc, "--output", back2, "--wrapping-keys",
             "discovery=true", "--commitment-policy", "require-encrypt-require-decrypt", "-S"], self.env)
        with open(back2, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_sops(self):
        src = os.path.join(WORK, "secrets.yaml")
        with open(src, "w") as f:
            f.write("db_password: hunter2\napi:\n  token: abc123\n")
        enc = run(["sops", "encrypt", "--kms", self.arn, "--encryption-context", "app:interop", src], self.env)
        self.assertNotIn(b"hunter2", enc)
        self.assertIn(self.arn.encode(), enc)
        enc_file = os.path.join(WORK, "secrets.enc.yaml")
        with open(enc_file, "wb") as f:
            f.write(enc)
        out = run(["sops", "decrypt", enc_file], self.env)
        self.assertIn(b"db_password: hunter2", out)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
