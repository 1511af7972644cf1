#!/usr/bin/env python3
"""Send veil ciphertexts to Triton Inference Server with tritonclient.

veil's backend (libtriton_veil.so) serves two models: `veil_keys` stores a
seeded evaluation key and answers its id; the inference model (e.g. `tiny`)
takes a key id and a ciphertext batch and answers the result batch. The bytes
are veil's own files, so encryption and decryption stay with the `veil` CLI
on the client's machine (the secret key never leaves it):

    veil keygen models/tiny.h5 --out keys/
    veil encrypt models/tiny.h5 --key keys/ --input samples.npy --output in.ct
    python deploy/triton/client.py --url 127.0.0.1:8000 --model tiny \\
        --eval-key keys/eval.key --input in.ct --output out.ct
    veil decrypt models/tiny.h5 --key keys/ --input out.ct

--key-id ID skips the upload (ids stay valid while the key store keeps the
file; every replica sharing the store accepts them). Needs `tritonclient[http]`
and numpy (scripts/setup-triton.sh installs both).
"""
import argparse
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def bytes_tensor(name, data):
    """One TYPE_STRING element, shape [1, 1] (batch dimension first)."""
    t = httpclient.InferInput(name, [1, 1], "BYTES")
    t.set_data_from_numpy(np.array([[data]], dtype=np.object_), binary_data=True)
    return t


def call(client, model, inputs, output):
    out = httpclient.InferRequestedOutput(output, binary_data=True)
    result = client.infer(model, inputs, outputs=[out])
    return result.as_numpy(output)[0][0]


def upload_key(client, keys_model, path):
    with open(path, "rb") as f:
        key = f.read()
    if key[:8] != b"VEILEK01":
        raise SystemExit(f"{path}: not an evaluation key file (a secret key never leaves here)")
    return call(client, keys_model, [bytes_tensor("EVAL_KEY", key)], "KEY_ID").decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="127.0.0.1:8000", help="Triton's HTTP address")
    ap.add_argument("--model", default="tiny", help="the inference model's name")
    ap.add_argument("--keys-model", default="veil_keys")
    ap.add_argument("--eval-key", help="eval.key of `veil keygen` (uploaded)")
    ap.add_argument("--key-id", help="an id from an earlier upload")
    ap.add_argument("--input", required=True, help="a ciphertext batch (`veil encrypt`)")
    ap.add_argument("--output", required=True, help="where the result batch goes")
    a = ap.parse_args()
    if not a.key_id and not a.eval_key:
        ap.error("give --eval-key or --key-id")
    client = httpclient.InferenceServerClient(url=a.url, network_timeout=600.0,
                                              connection_timeout=600.0)
    try:
        key_id = a.key_id or upload_key(client, a.keys_model, a.eval_key)
        print(f"key id {key_id}", file=sys.stderr)
        with open(a.input, "rb") as f:
            batch = f.read()
        result = call(client, a.model,
                      [bytes_tensor("KEY_ID", key_id.encode()), bytes_tensor("CT_BATCH", batch)],
                      "RESULT")
    except InferenceServerException as e:
        # veil's refusals arrive as Triton errors: "veil unknown_key: ...",
        # "veil model_mismatch: ...", "veil secret_key_refused: ..."
        raise SystemExit(f"triton: {e.message()}")
    with open(a.output, "wb") as f:
        f.write(result)
    print(f"{a.output}: {len(result)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
