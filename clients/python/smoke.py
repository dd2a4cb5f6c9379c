"""Keyward's generated Python client against a live server: create a key, GenerateDataKey,
Decrypt, an error with its problem+json code, a signing key and an HMAC key (Sign, Verify,
GetPublicKey, GenerateMac, VerifyMac), and a key for imported material (GetParametersForImport,
ImportKeyMaterial refusing material that does not unwrap, DeleteImportedKeyMaterial; the
TypeScript program imports for real). Usage: smoke.py BASE_URL TOKEN"""

import base64
import sys

from keyward_client import AuthenticatedClient
from keyward_client.api.approvals import list_approvals
from keyward_client.api.crypto import decrypt, generate_data_key
from keyward_client.api.import_ import delete_imported_key_material, get_parameters_for_import, import_key_material
from keyward_client.api.keys import create_key, describe_key, get_key_usage, schedule_key_deletion, update_key
from keyward_client.api.signing import generate_mac, get_public_key, sign, verify, verify_mac
from keyward_client.models import (
    CreateKeyRequest,
    DecryptRequest,
    GenerateDataKeyRequest,
    GenerateMacRequest,
    ImportKeyMaterialRequest,
    ImportParametersRequest,
    Problem,
    ScheduleKeyDeletionRequest,
    SignRequest,
    UpdateKeyRequest,
    VerifyMacRequest,
    VerifyRequest,
)


def main(base_url: str, token: str) -> None:
    client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
    key = create_key.sync(client=client, body=CreateKeyRequest.from_dict({"namespace": "clients", "description": "python"}))
    assert key is not None and not isinstance(key, Problem), key
    context = {"app": "python"}
    dk = generate_data_key.sync(key.key_id, client=client, body=GenerateDataKeyRequest.from_dict({"encryption_context": context}))
    assert dk is not None and not isinstance(dk, Problem), dk
    assert len(base64.b64decode(dk.plaintext)) == 32
    back = decrypt.sync(
        client=client, body=DecryptRequest.from_dict({"ciphertext_blob": dk.ciphertext_blob, "encryption_context": context})
    )
    assert back is not None and not isinstance(back, Problem), back
    assert back.plaintext == dk.plaintext and back.key_id == key.key_id
    wrong = decrypt.sync_detailed(
        client=client,
        body=DecryptRequest.from_dict({"ciphertext_blob": dk.ciphertext_blob, "encryption_context": {"app": "other"}}),
    )
    assert wrong.status_code == 400, wrong
    assert isinstance(wrong.parsed, Problem) and wrong.parsed.code == "InvalidCiphertext", wrong.parsed
    signing(client)
    importing(client)
    governance(client)
    print(f"python client: ok (key {key.key_id})")


def signing(client: AuthenticatedClient) -> None:
    ec = create_key.sync(client=client, body=CreateKeyRequest.from_dict({"namespace": "clients", "key_spec": "ECC_NIST_P256"}))
    assert ec is not None and not isinstance(ec, Problem) and ec.key_usage == "SIGN_VERIFY", ec
    message = base64.b64encode(b"signed by the python client").decode()
    signed = sign.sync(ec.key_id, client=client, body=SignRequest.from_dict({"message": message, "signing_algorithm": "ECDSA_SHA_256"}))
    assert signed is not None and not isinstance(signed, Problem), signed
    checked = verify.sync(ec.key_id, client=client, body=VerifyRequest.from_dict(
        {"message": message, "signature": signed.signature, "signing_algorithm": "ECDSA_SHA_256"}))
    assert checked is not None and not isinstance(checked, Problem) and checked.signature_valid is True, checked
    public = get_public_key.sync(ec.key_id, client=client)
    assert public is not None and not isinstance(public, Problem) and public.key_spec == "ECC_NIST_P256", public
    assert public.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----"), public
    hmac_key = create_key.sync(client=client, body=CreateKeyRequest.from_dict({"namespace": "clients", "key_spec": "HMAC_256"}))
    assert hmac_key is not None and not isinstance(hmac_key, Problem), hmac_key
    mac = generate_mac.sync(hmac_key.key_id, client=client, body=GenerateMacRequest.from_dict({"message": message, "mac_algorithm": "HMAC_SHA_256"}))
    assert mac is not None and not isinstance(mac, Problem) and len(base64.b64decode(mac.mac)) == 32, mac
    ok = verify_mac.sync(hmac_key.key_id, client=client, body=VerifyMacRequest.from_dict(
        {"message": message, "mac": mac.mac, "mac_algorithm": "HMAC_SHA_256"}))
    assert ok is not None and not isinstance(ok, Problem) and ok.mac_valid is True, ok
    wrong = sign.sync_detailed(hmac_key.key_id, client=client, body=SignRequest.from_dict(
        {"message": message, "signing_algorithm": "ECDSA_SHA_256"}))
    assert wrong.status_code == 400 and isinstance(wrong.parsed, Problem) and wrong.parsed.code == "InvalidKeyUsage", wrong


def importing(client: AuthenticatedClient) -> None:
    key = create_key.sync(client=client, body=CreateKeyRequest.from_dict({"namespace": "clients", "origin": "EXTERNAL"}))
    assert key is not None and not isinstance(key, Problem) and key.key_state == "PendingImport", key
    params = get_parameters_for_import.sync(key.key_id, client=client, body=ImportParametersRequest.from_dict(
        {"wrapping_algorithm": "RSAES_OAEP_SHA_256", "wrapping_key_spec": "RSA_2048"}))
    assert params is not None and not isinstance(params, Problem), params
    assert params.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----") and params.import_token, params
    bogus = base64.b64encode(bytes(256)).decode()
    refused = import_key_material.sync_detailed(key.key_id, client=client, body=ImportKeyMaterialRequest.from_dict(
        {"import_token": params.import_token, "encrypted_key_material": bogus}))
    assert refused.status_code == 400 and isinstance(refused.parsed, Problem), refused
    assert refused.parsed.code == "InvalidCiphertext", refused.parsed
    still = delete_imported_key_material.sync(key.key_id, client=client)
    assert still is not None and not isinstance(still, Problem) and still.key_state == "PendingImport", still


def governance(client: AuthenticatedClient) -> None:
    """GetKeyUsage, the deletion canary cancelling a deletion (UpdateKey's on_use_while_pending), and a namespace default key."""
    key = create_key.sync(client=client, body=CreateKeyRequest.from_dict({"namespace": "clients"}))
    assert key is not None and not isinstance(key, Problem), key
    dk = generate_data_key.sync(key.key_id, client=client, body=GenerateDataKeyRequest.from_dict({}))
    assert dk is not None and not isinstance(dk, Problem), dk
    usage = get_key_usage.sync(key.key_id, client=client, days=7)
    assert usage is not None and not isinstance(usage, Problem), usage
    assert usage.days == 7 and usage.versions[0].encryptions == 1, usage
    updated = update_key.sync(key.key_id, client=client, body=UpdateKeyRequest.from_dict({"on_use_while_pending": "cancel"}))
    assert updated is not None and not isinstance(updated, Problem) and updated.on_use_while_pending == "cancel", updated
    pending = schedule_key_deletion.sync(key.key_id, client=client, body=ScheduleKeyDeletionRequest.from_dict({}))
    assert pending is not None and not isinstance(pending, Problem) and pending.key_state == "PendingDeletion", pending
    tried = generate_data_key.sync_detailed(key.key_id, client=client, body=GenerateDataKeyRequest.from_dict({}))
    assert tried.status_code == 409 and isinstance(tried.parsed, Problem), tried
    assert tried.parsed.code == "KeyPendingDeletion", tried.parsed
    after = describe_key.sync(key.key_id, client=client)
    assert after is not None and not isinstance(after, Problem), after
    assert after.key_state == "Disabled" and after.deletion_canary_count == 1, after
    # No quorum is configured here: nothing waits for approval.
    waiting = list_approvals.sync(client=client, state="Pending")
    assert waiting is not None and not isinstance(waiting, Problem) and waiting.approvals == [], waiting
    # The namespace's default key is made on first use.
    default = generate_data_key.sync("alias/keyward/clients-py", client=client, body=GenerateDataKeyRequest.from_dict({}))
    assert default is not None and not isinstance(default, Problem), default
    made = describe_key.sync(default.key_id, client=client)
    assert made is not None and not isinstance(made, Problem) and made.aliases == ["alias/keyward/clients-py"], made


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
