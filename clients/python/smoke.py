"""Keyward's generated Python client against a live server: create a key, GenerateDataKey,
Decrypt, and an error with its problem+json code. Usage: smoke.py BASE_URL TOKEN"""

import base64
import sys

from keyward_client import AuthenticatedClient
from keyward_client.api.crypto import decrypt, generate_data_key
from keyward_client.api.keys import create_key
from keyward_client.models import CreateKeyRequest, DecryptRequest, GenerateDataKeyRequest, Problem


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
    print(f"python client: ok (key {key.key_id})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
